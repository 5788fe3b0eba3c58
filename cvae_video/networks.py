"""The conditional VAE of the lab, as plain torch modules (no Lightning, no Hydra).

Data flow for one predicted frame t (all tensors keep the full H x W resolution):

    x_{t-1} --frame_encoder--> h_prev (B, F, H, W)
    pose_t  --label_encoder--> h_pose (B, L, H, W)
    x_t     --frame_encoder--> h_t --posterior(h_t, h_pose)--> z, mu, logvar (B, N, H, W)
    (h_prev, h_pose, z) --fusion--> (B, D, H, W) --generator--> x_hat_t (B, 3, H, W) in [0, 1]

`PoseCVAE.unroll` is the one time loop: training (posterior z, teacher forcing or own outputs) and
inference (prior z, own outputs) both run it. Only the free-running part is sequential (the previous
frame is the model's own output); everything else (encoding ground-truth frames and poses, the
posterior, and under teacher forcing the whole step) runs over many time steps per network call.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

SLOPE = 0.01  # LeakyReLU slope of the template's blocks
# `time_chunk=None`: as many time steps per network call as keep a call within this many frames (B x steps).
# Measured with `python -m cvae_video.bench --chunk-sweep ...`: on 2 CPU cores 4 frames per call beat both one
# step per call and all steps at once (large calls spill out of the caches); a GPU wants few, large calls.
FRAMES_PER_CALL = {"cpu": 4, "cuda": 512}


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU; a 1x1 skip when the widths differ."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(SLOPE),
            nn.Conv2d(out_ch, out_ch, 3, padding=1), nn.LeakyReLU(SLOPE),
        )
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class DepthConvBlock(nn.Module):
    """1x1, depthwise 3x3, 1x1 (with skip), then a 1x1 feed-forward with 4x expansion (with skip)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.depth = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 1), nn.LeakyReLU(SLOPE),
            nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch),
            nn.Conv2d(in_ch, out_ch, 1),
        )
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        hidden = max(min(out_ch * 4, 1024), out_ch * 2)
        self.ffn = nn.Sequential(
            nn.Conv2d(out_ch, hidden, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, out_ch, 1), nn.LeakyReLU(0.1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depth(x) + self.skip(x)
        return x + self.ffn(x)


class FrameEncoder(nn.Sequential):
    """RGB frame (B, 3, H, W) -> features (B, F, H, W)."""

    def __init__(self, out_ch: int):
        super().__init__(
            ResidualBlock(3, out_ch // 8), DepthConvBlock(out_ch // 8, out_ch // 8),
            ResidualBlock(out_ch // 8, out_ch // 4), DepthConvBlock(out_ch // 4, out_ch // 4),
            ResidualBlock(out_ch // 4, out_ch // 2), DepthConvBlock(out_ch // 2, out_ch // 2),
            nn.Conv2d(out_ch // 2, out_ch, 3, padding=1),
        )


class StepwiseBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over frames of several time steps in one call that behaves as one call per step.

    Input (B * S, C, H, W), batch-major (row b * S + s is sample b at step s). In training each step is
    normalized by its own batch statistics and the running statistics get the S updates, in time order,
    that S separate calls would make; with S = 1 or in eval mode it is plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor, steps: int = 1) -> torch.Tensor:
        if steps == 1 or not self.training:
            return super().forward(x)
        n, c, h, w = x.shape
        # Each (step, channel) pair as a channel of its own: statistics per step over (B, H, W).
        y = F.batch_norm(x.reshape(n // steps, steps * c, h, w), None, None, self.weight.repeat(steps),
                         self.bias.repeat(steps), training=True, eps=self.eps)
        with torch.no_grad():
            stats = self.running_mean.dtype                                       # float32 also under bf16 autocast
            per_step = x.detach().to(stats).reshape(n // steps, steps, c, h * w)
            mean, var = per_step.mean(dim=(0, 3)), per_step.var(dim=(0, 3))   # (S, C); var unbiased, as BatchNorm2d's
            m = self.momentum
            weights = m * (1 - m) ** torch.arange(steps - 1, -1, -1, device=x.device, dtype=stats)  # step s's share
            self.running_mean.mul_((1 - m) ** steps).add_(weights @ mean)
            self.running_var.mul_((1 - m) ** steps).add_(weights @ var)
            self.num_batches_tracked.add_(steps)
        return y.reshape(n, c, h, w)


class LabelEncoder(nn.Sequential):
    """Pose images of S time steps (B, S, 3, H, W) -> features (B, S, L, H, W), in one call.

    slope: of the activation after the BatchNorm; the template's `LeakyReLU(True)` is slope 1 (none).
    """

    def __init__(self, out_ch: int, slope: float = SLOPE):
        super().__init__(
            nn.ReflectionPad2d(3), nn.Conv2d(3, out_ch // 2, 7), StepwiseBatchNorm2d(out_ch // 2),
            nn.LeakyReLU(slope), ResidualBlock(out_ch // 2, out_ch),
        )

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        b, s = poses.shape[:2]
        pad, conv, norm, act, block = self
        x = norm(conv(pad(poses.flatten(0, 1))), steps=s)                  # (B * S, L/2, H, W)
        return block(act(x)).unflatten(0, (b, s))


class Posterior(nn.Module):
    """q(z | frame_t, pose_t): (B, F, H, W), (B, L, H, W) -> mu, logvar, each (B, N, H, W).

    slope: of the activation before the last 1x1 convolution; the template's `LeakyReLU(True)` is slope 1.
    """

    def __init__(self, in_ch: int, noise_ch: int, slope: float = SLOPE):
        super().__init__()
        n, quarter, half = noise_ch, max(noise_ch // 4, 1), max(noise_ch // 2, 1)
        self.net = nn.Sequential(
            ResidualBlock(in_ch, quarter), DepthConvBlock(quarter, quarter),
            ResidualBlock(quarter, half), DepthConvBlock(half, half),
            ResidualBlock(half, n), nn.LeakyReLU(slope), nn.Conv2d(n, 2 * n, 1),
        )

    def forward(self, frame_feat: torch.Tensor, pose_feat: torch.Tensor):
        mu, logvar = self.net(torch.cat([frame_feat, pose_feat], 1)).chunk(2, dim=1)
        return mu, logvar


class Fusion(nn.Sequential):
    """(previous-frame features, pose features, z) concatenated (B, F+L+N, H, W) -> (B, D, H, W)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            DepthConvBlock(in_ch, in_ch), ResidualBlock(in_ch, in_ch // 4),
            DepthConvBlock(in_ch // 4, in_ch // 2), ResidualBlock(in_ch // 2, in_ch // 2),
            DepthConvBlock(in_ch // 2, out_ch // 2), nn.Conv2d(out_ch // 2, out_ch, 1),
        )


class Generator(nn.Sequential):
    """Fused features (B, D, H, W) -> frame (B, 3, H, W); in [0, 1] with `sigmoid` (the template has none)."""

    def __init__(self, in_ch: int, sigmoid: bool = False):
        c = in_ch
        super().__init__(
            DepthConvBlock(c, c), ResidualBlock(c, c // 2), DepthConvBlock(c // 2, c // 2),
            ResidualBlock(c // 2, c // 4), DepthConvBlock(c // 4, c // 4),
            ResidualBlock(c // 4, c // 8), DepthConvBlock(c // 8, c // 8),
            nn.Conv2d(c // 8, 3, 1), *([nn.Sigmoid()] if sigmoid else []),
        )


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(0, I)) summed over latent elements, averaged over the batch (the lab's formula).

    mu, logvar (B, N, H, W) give a scalar; (B, T, N, H, W) give one value per time step, (T,). Always in
    float32: under bf16 autocast mu and logvar come in bf16, whose 8-bit mantissa would round a KL of
    thousands to steps of 16 or more.
    """
    mu, logvar = mu.float(), logvar.float()
    terms = 1 + logvar - mu.pow(2) - logvar.exp()
    return -0.5 * terms.sum(dim=(0, -3, -2, -1)) / mu.shape[0]


def sequence_loss(preds: torch.Tensor, frames: torch.Tensor, kls: torch.Tensor,
                  beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training loss: sum over frames of each frame's MSE, plus beta times the summed KL.

    preds (B, T-1, 3, H, W), frames (B, T, 3, H, W) (frame 0 is given, not predicted), kls (T-1,).
    Returns (loss, mse, kl).
    """
    mse = (preds - frames[:, 1:]).pow(2).mean(dim=(0, 2, 3, 4)).sum()
    kl = kls.sum()
    return mse + beta * kl, mse, kl


def per_frame(net, *seqs: torch.Tensor):
    """`net`, a network on frames (N, C, H, W), run on sequences (B, S, C, H, W) as one batch of B * S frames."""
    b, s = seqs[0].shape[:2]
    out = net(*(x.flatten(0, 1) for x in seqs))
    if isinstance(out, tuple):
        return tuple(o.unflatten(0, (b, s)) for o in out)
    return out.unflatten(0, (b, s))


class CapturedStep:
    """The free-running `step` for fixed-shape CUDA inputs, recorded once as a CUDA graph and replayed.

    A step is ~80 convolutions of a few thousand pixels: their launches, not the arithmetic, set the time,
    and one replay launches them all at once. Inputs are copied into the graph's own buffers. Returns the
    prediction as a new tensor and its features as the graph's buffer, valid until the next replay (the
    loop only feeds them back in). Autocast, if on, is recorded with its cast cache off (a cached cast
    would be freed under the graph when autocast exits).
    """

    def __init__(self, step, *example: torch.Tensor):
        autocast = partial(torch.autocast, "cuda", dtype=torch.get_autocast_dtype("cuda"),
                           enabled=torch.is_autocast_enabled("cuda"), cache_enabled=False)
        self.inputs = [x.clone() for x in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), autocast():
            for _ in range(2):   # warm-up: lazy initialisation and cuDNN autotuning stay out of the graph
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


class SequenceCVAE(nn.Module):
    """The time loop shared by every design: `unroll` (training and inference), time chunking, CUDA graphs.

    A design (a subclass) builds `frame_encoder` (N, 3, H, W) -> (N, F, H, W), `label_encoder`
    (B, S, 3, H, W) -> (B, S, L, H, W), `posterior` (frame features, pose features) -> mu, logvar
    (N, noise_dim, H / latent_scale, W / latent_scale), and `decode`.

    time_chunk: time steps per network call wherever steps are independent (encoding ground-truth frames
        and poses, the posterior, and every step under teacher forcing): 1 = one call per step, 0 = all
        steps in one call, None = by device (FRAMES_PER_CALL: 2 steps at batch 2 on CPU; on CUDA a whole
        training clip, and 630-frame sequences in a few pieces). Results do not depend on it (the label
        encoder's BatchNorm keeps per-step statistics).
    channels_last: keep the convolution weights in channels-last layout (the convolutions then run NHWC;
        faster on CPU by a few percent, measured as above).
    cuda_graphs: free-running steps without gradients on CUDA (rollouts) replay a CUDA graph per input shape.
    `compile_step(mode)` (opt-in, measured by the benchmark) runs those steps through torch.compile instead.
    """

    latent_scale = 1   # the latent's downsampling factor against the frame

    def __init__(self, noise_dim: int, time_chunk: int | None, cuda_graphs: bool):
        super().__init__()
        self.noise_dim, self.time_chunk, self.cuda_graphs = noise_dim, time_chunk, cuda_graphs
        self._graphs: dict[tuple, CapturedStep] = {}
        self._compiled: CompiledStep | None = None

    def _apply(self, fn, *args, **kwargs):
        self._graphs.clear()   # .to(), .cuda(), .half() ... move the weights a captured graph reads
        return super()._apply(fn, *args, **kwargs)

    def first_frame_context(self, first_feat: torch.Tensor, first_pose: torch.Tensor) -> torch.Tensor:
        """What every step of a sequence may read of its first (ground-truth) frame: from the frame's features
        (B, F, H, W) and its pose image (B, 3, H, W), a tensor (B, C, H, W). Here nothing (C = 0): the template
        sees frame 0 only as the first step's previous frame."""
        return first_feat[:, :0]

    def decode(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor,
               context: torch.Tensor) -> torch.Tensor:
        """Features of the previous frame, pose features of this one, z and the `first_frame_context` of the
        sequence -> the predicted frame (B, 3, H, W)."""
        raise NotImplementedError

    def step(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor):
        """One free-running step: the predicted frame (B, 3, H, W) and its features (B, F, H, W) for the next."""
        pred = self.decode(prev_feat, pose_feat, z, context)
        return pred, self.frame_encoder(pred)

    def _over_time(self, net, *seqs: torch.Tensor):
        """`net` on sequences (B, S, ...) of independent steps, `time_chunk` steps per call: (B, S, ...) results."""
        batch, steps = seqs[0].shape[:2]
        chunk = self.time_chunk
        if chunk is None:
            chunk = max(1, FRAMES_PER_CALL.get(seqs[0].device.type, 1) // batch)
        chunk = chunk or steps
        parts = [net(*(x[:, t:t + chunk] for x in seqs)) for t in range(0, steps, chunk)]
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(p, 1) for p in zip(*parts))
        return torch.cat(parts, 1)

    def standard_noise(self, batch: int, steps: int, height: int, width: int, device: torch.device,
                       generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard-normal draws behind z for `steps` predicted frames of (height, width): (B, steps, N, h, w) on
        `device`, drawn from `generator` (on its own device: a CPU generator gives the same z on every device)
        or else from the device's global generator."""
        s = self.latent_scale
        shape = (batch, steps, self.noise_dim, height // s, width // s)
        if generator is None:
            return torch.randn(shape, device=device, dtype=dtype)
        return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)

    def compile_step(self, mode: str = "reduce-overhead") -> None:
        """Run free-running steps without gradients (rollouts) through torch.compile(mode=mode) from now on."""
        self._compiled = CompiledStep(self.step, mode)

    def _free_running_step(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor,
                           context: torch.Tensor):
        """Without gradients: the compiled step (`compile_step`), or with `cuda_graphs` on CUDA the step's CUDA
        graph for these shapes, captured on first use. Otherwise (training) `step` itself."""
        if torch.is_grad_enabled():
            return self.step
        if self._compiled is not None:
            return self._compiled
        if not (self.cuda_graphs and prev_feat.is_cuda):
            return self.step
        key = (tuple(prev_feat.shape), prev_feat.dtype, pose_feat.dtype, z.dtype, prev_feat.device,
               torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"), torch.is_inference_mode_enabled())
        if key not in self._graphs:
            self._graphs[key] = CapturedStep(self.step, prev_feat, pose_feat, z, context)
        return self._graphs[key]

    def unroll(self, poses: torch.Tensor, frames: torch.Tensor, use_posterior: bool, teacher_forcing: bool,
               noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict frames 1..T-1.

        poses:  (B, T, 3, H, W), the pose of every frame.
        frames: (B, T, 3, H, W) ground truth, or (B, 1, 3, H, W) (just the first frame) when neither
                the posterior nor teacher forcing needs the later ones.
        use_posterior: z ~ q(z | x_t, pose_t) (training) instead of z ~ N(0, I) (inference).
        teacher_forcing: the previous frame is the ground truth x_{t-1}, else the model's own output.
        noise: (B, T-1, N, H / s, W / s) (s = latent_scale) standard-normal draws behind z (the
               reparameterization's epsilon, or z itself under the prior); None draws them.
        Returns predictions (B, T-1, 3, H, W) and the KL of each step (T-1,) (zeros under the prior).
        Every step also sees the `first_frame_context` of frame 0, the one ground-truth frame inference has.
        """
        b, steps, _, h, w = poses.shape
        if (use_posterior or teacher_forcing) and frames.shape[1] < steps:
            raise ValueError(f"unroll needs {steps} ground-truth frames, got {frames.shape[1]}")
        # Ground-truth frames to encode: all for the posterior, 0..T-2 as previous frames, else just frame 0.
        known = steps if use_posterior else steps - 1 if teacher_forcing else 1
        truth_feat = self._over_time(partial(per_frame, self.frame_encoder), frames[:, :known])  # (B, known, F, H, W)
        pose_feat = self._over_time(self.label_encoder, poses[:, 1:])                             # (B, T-1, L, H, W)
        if noise is None:
            noise = self.standard_noise(b, steps - 1, h, w, poses.device, dtype=pose_feat.dtype)
        if use_posterior:
            mu, logvar = self._over_time(partial(per_frame, self.posterior), truth_feat[:, 1:], pose_feat)
            z = mu + noise * torch.exp(0.5 * logvar)              # reparameterization; mu, logvar (B, T-1, N, h, w)
            kls = kl_to_standard_normal(mu, logvar)               # (T-1,)
        else:
            z, kls = noise, pose_feat.new_zeros(steps - 1)
        context = self.first_frame_context(truth_feat[:, 0], poses[:, 0])     # (B, C, H, W)
        if teacher_forcing:
            contexts = context.unsqueeze(1).expand(-1, steps - 1, *context.shape[1:])
            preds = self._over_time(partial(per_frame, self.decode), truth_feat[:, :steps - 1], pose_feat, z, contexts)
            return preds, kls                                     # (B, T-1, 3, H, W), (T-1,)
        prev_feat, preds = truth_feat[:, 0], []                                # (B, F, H, W)
        step = self._free_running_step(prev_feat, pose_feat[:, 0], z[:, 0], context)
        for t in range(steps - 2):
            pred, prev_feat = step(prev_feat, pose_feat[:, t], z[:, t], context)
            preds.append(pred)
        preds.append(self.decode(prev_feat, pose_feat[:, -1], z[:, -1], context))  # the last one is not re-encoded
        return torch.stack(preds, 1), kls


class PoseCVAE(SequenceCVAE):
    """The lab template's design with widths F (frame), L (label), N (noise) and D (fusion): every network
    keeps the full H x W resolution; the first frame's features are not used (the template has none)."""

    def __init__(self, frame_dim: int = 128, label_dim: int = 32, noise_dim: int = 12, fusion_dim: int = 192,
                 label_slope: float = SLOPE, posterior_slope: float = SLOPE, output_sigmoid: bool = False,
                 time_chunk: int | None = None, channels_last: bool = True, cuda_graphs: bool = False):
        super().__init__(noise_dim, time_chunk, cuda_graphs)
        self.frame_encoder = FrameEncoder(frame_dim)
        self.label_encoder = LabelEncoder(label_dim, label_slope)
        self.posterior = Posterior(frame_dim + label_dim, noise_dim, posterior_slope)
        self.fusion = Fusion(frame_dim + label_dim + noise_dim, fusion_dim)
        self.generator = Generator(fusion_dim, output_sigmoid)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def decode(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor,
               context: torch.Tensor) -> torch.Tensor:
        """(B, F, H, W), (B, L, H, W), (B, N, H, W) -> the predicted frame (B, 3, H, W)."""
        return self.generator(self.fusion(torch.cat([prev_feat, pose_feat, z], 1)))
