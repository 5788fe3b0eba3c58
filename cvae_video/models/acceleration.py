"""Faster free-running steps for rollouts: one CUDA graph per step (`CapturedStep`) or torch.compile
(`CompiledStep`). `SequenceCVAE._free_running_step` picks one; training never uses them."""

from __future__ import annotations

from functools import partial

import torch


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
