"""How a design runs, apart from what it computes: `configure` sets a `SequenceCVAE`'s time chunking, its weights'
memory layout and its faster free-running steps for rollouts: one CUDA graph per step (`CUDAGraphSteps`) or
torch.compile (`CompiledSteps`). Training never uses the faster steps (they run only without gradients)."""

from __future__ import annotations

from functools import partial

import torch

from cvae_video.models.sequence import SequenceCVAE


class CapturedStep:
    """The free-running `step` for fixed-shape CUDA inputs, recorded once as a CUDA graph and replayed.

    A step is ~80 convolutions of a few thousand pixels: their launches, not the arithmetic, set the time,
    and one replay launches them all at once. Inputs are copied into the graph's own buffers. Returns the
    prediction as a new tensor and its features as the graph's buffer, valid until the next replay (the
    loop only feeds them back in). Autocast, if on, is recorded with its cast cache off (a cached cast
    would be freed under the graph when autocast exits).
    """

    def __init__(self, step, *example: torch.Tensor):
        autocast = partial(
            torch.autocast,
            "cuda",
            dtype=torch.get_autocast_dtype("cuda"),
            enabled=torch.is_autocast_enabled("cuda"),
            cache_enabled=False,
        )
        self.inputs = [x.clone() for x in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), autocast():
            for _ in range(2):  # warm-up: lazy initialisation and cuDNN autotuning stay out of the graph
                step(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), autocast():
            self.outputs = step(*self.inputs)

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for buffer, x in zip(self.inputs, inputs):
            buffer.copy_(x)
        self.graph.replay()
        pred, feat = self.outputs
        return pred.clone(), feat


class CompiledStep:
    """The free-running `step` through `torch.compile` (fused kernels; `mode="reduce-overhead"` also replays
    CUDA graphs, whose outputs the next replay overwrites: each call starts a new graph step and copies them)."""

    def __init__(self, step, mode: str):
        self.step = torch.compile(step, mode=mode, fullgraph=True, dynamic=False)

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        torch.compiler.cudagraph_mark_step_begin()
        pred, feat = self.step(*inputs)
        return pred.clone(), feat.clone()


class CUDAGraphSteps:
    """`SequenceCVAE.fast_step` on CUDA: each step replayed from a `CapturedStep`, captured on first use for its
    step, input shapes and dtypes, autocast state and weights (weights moved by `.to()` are captured anew)."""

    def __init__(self, net: SequenceCVAE):
        self.net, self.graphs, self.weights = net, {}, None

    def __call__(self, step, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor):
        if not prev_feat.is_cuda:
            return step
        weights = next(self.net.parameters()).data_ptr()
        if weights != self.weights:
            self.graphs, self.weights = {}, weights
        key = (
            step.__name__,
            tuple(prev_feat.shape),
            prev_feat.dtype,
            pose_feat.dtype,
            z.dtype,
            prev_feat.device,
            torch.is_autocast_enabled("cuda"),
            torch.get_autocast_dtype("cuda"),
            torch.is_inference_mode_enabled(),
        )
        if key not in self.graphs:
            self.graphs[key] = CapturedStep(step, prev_feat, pose_feat, z, context)
        return self.graphs[key]


class CompiledSteps:
    """`SequenceCVAE.fast_step` through torch.compile(mode=mode): one `CompiledStep` per step function."""

    def __init__(self, mode: str):
        self.mode, self.compiled = mode, {}

    def __call__(self, step, *example: torch.Tensor):
        if step.__name__ not in self.compiled:
            self.compiled[step.__name__] = CompiledStep(step, self.mode)
        return self.compiled[step.__name__]


def configure(
    net: SequenceCVAE,
    time_chunk: int | None = None,
    channels_last: bool = True,
    cuda_graphs: bool = True,
    compile: str | None = None,
) -> SequenceCVAE:
    """Set how `net` runs (never what it computes): `time_chunk` steps per network call where steps are independent
    (None: by device, 0: all); convolution weights in channels-last layout (NHWC); rollouts' free-running steps
    through torch.compile with mode `compile` if given, else, with `cuda_graphs`, replayed as CUDA graphs on CUDA."""
    net.time_chunk = time_chunk
    if channels_last:
        net.to(memory_format=torch.channels_last)
    net.fast_step = CompiledSteps(compile) if compile else CUDAGraphSteps(net) if cuda_graphs else None
    return net
