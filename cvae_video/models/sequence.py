"""The time loop every design shares, and the training loss.

Data flow for one predicted frame t, in the template (models/template.py; at full H x W resolution):

    x_{t-1} --frame_encoder--> h_prev (B, F, H, W)
    pose_t  --label_encoder--> h_pose (B, L, H, W)
    x_t     --frame_encoder--> h_t --posterior(h_t, h_pose)--> z, mu, logvar (B, N, H, W)
    (h_prev, h_pose, z) --fusion--> (B, D, H, W) --generator--> x_hat_t (B, 3, H, W) in [0, 1]

`SequenceCVAE.unroll` is the one time loop: training (posterior z, teacher forcing or own outputs) and
inference (prior z, own outputs) both run it. Only the free-running part is sequential (the previous
frame is the model's own output); everything else (encoding ground-truth frames and poses, the
posterior, and under teacher forcing the whole step) runs over many time steps per network call.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from cvae_video.models.acceleration import CapturedStep, CompiledStep

# `time_chunk=None`: as many time steps per network call as keep a call within this many frames (B x steps).
# Measured with `python -m bench.steps --chunk-sweep ...`: on 2 CPU cores 4 frames per call beat both one
# step per call and all steps at once (large calls spill out of the caches); a GPU wants few, large calls.
FRAMES_PER_CALL = {"cpu": 4, "cuda": 512}


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(0, I)) summed over latent elements, averaged over the batch (the lab's formula).

    mu, logvar (B, N, H, W) give a scalar; (B, T, N, H, W) give one value per time step, (T,). Always in
    float32 or wider: under bf16 autocast mu and logvar come in bf16, whose 8-bit mantissa would round a KL of
    thousands to steps of 16 or more.
    """
    dtype = torch.promote_types(mu.dtype, torch.float32)  # bf16 / fp16 up to float32; float64 stays
    mu, logvar = mu.to(dtype), logvar.to(dtype)
    terms = 1 + logvar - mu.pow(2) - logvar.exp()
    return -0.5 * terms.sum(dim=(0, -3, -2, -1)) / mu.shape[0]


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) between diagonal Gaussians, normalised as
    `kl_to_standard_normal` (summed over latent elements, averaged over the batch; at least float32).
    (B, T, N, h, w) each -> (T,)."""
    dtype = torch.promote_types(mu_q.dtype, torch.float32)
    mu_q, logvar_q, mu_p, logvar_p = (x.to(dtype) for x in (mu_q, logvar_q, mu_p, logvar_p))
    terms = logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1
    return 0.5 * terms.sum(dim=(0, -3, -2, -1)) / mu_q.shape[0]


def sequence_loss(
    preds: torch.Tensor, frames: torch.Tensor, kls: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
    prior: "fixed" (z ~ N(0, I) at test time, the lab's) or "learned" (SVG-LP, Denton & Fergus 2018): a design
        then also builds `learned_prior`, a network like its posterior that reads `prior_inputs` (what the model
        knows at test time) and gives p(z_t | ...); training minimises KL(q || p) with p given the true previous
        frame, and inference draws z from p given the model's own previous frame.
    """

    PRIORS = ("fixed", "learned")

    latent_scale = 1  # the latent's downsampling factor against the frame

    def __init__(self, noise_dim: int, time_chunk: int | None, cuda_graphs: bool, prior: str = "fixed"):
        super().__init__()
        if prior not in self.PRIORS:
            raise ValueError(f"prior must be one of {self.PRIORS}, got {prior!r}")
        self.noise_dim, self.time_chunk, self.cuda_graphs = noise_dim, time_chunk, cuda_graphs
        self.learned_prior: nn.Module | None = None  # built by a design when prior == "learned"
        self._graphs: dict[tuple, CapturedStep] = {}
        self._compile_mode: str | None = None
        self._compiled: dict[str, CompiledStep] = {}

    def _apply(self, fn, *args, **kwargs):
        self._graphs.clear()  # .to(), .cuda(), .half() ... move the weights a captured graph reads
        return super()._apply(fn, *args, **kwargs)

    def first_frame_context(self, first_feat: torch.Tensor, first_pose: torch.Tensor) -> torch.Tensor:
        """What every step of a sequence may read of its first (ground-truth) frame: from the frame's features
        (B, F, H, W) and its pose image (B, 3, H, W), a tensor (B, C, H, W). Here nothing (C = 0): the template
        sees frame 0 only as the first step's previous frame."""
        return first_feat[:, :0]

    def decode(
        self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """Features of the previous frame, pose features of this one, z and the `first_frame_context` of the
        sequence -> the predicted frame (B, 3, H, W)."""
        raise NotImplementedError

    def step(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor):
        """One free-running step: the predicted frame (B, 3, H, W) and its features (B, F, H, W) for the next."""
        pred = self.decode(prev_feat, pose_feat, z, context)
        return pred, self.frame_encoder(pred)

    def prior_inputs(
        self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the learned prior reads, the two inputs of a posterior-like network: here the previous frame's
        features and this frame's pose features."""
        return prev_feat, pose_feat

    def prior_moments(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, context: torch.Tensor):
        """mu, logvar of the learned prior p(z_t | ...), each (B, N, h, w)."""
        return self.learned_prior(*self.prior_inputs(prev_feat, pose_feat, context))

    def prior_z(
        self, noise: torch.Tensor, prev_feat: torch.Tensor, pose_feat: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """z drawn from the learned prior: mu_p + noise * sigma_p, noise standard normal (B, N, h, w)."""
        mu, logvar = self.prior_moments(prev_feat, pose_feat, context)
        return mu + noise * torch.exp(0.5 * logvar)

    def prior_step(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, noise: torch.Tensor, context: torch.Tensor):
        """A free-running step under the learned prior: z from p given the previous (predicted) frame."""
        return self.step(prev_feat, pose_feat, self.prior_z(noise, prev_feat, pose_feat, context), context)

    def _over_time(self, net, *seqs: torch.Tensor):
        """`net` on sequences (B, S, ...) of independent steps, `time_chunk` steps per call: (B, S, ...) results."""
        batch, steps = seqs[0].shape[:2]
        chunk = self.time_chunk
        if chunk is None:
            chunk = max(1, FRAMES_PER_CALL.get(seqs[0].device.type, 1) // batch)
        chunk = chunk or steps
        parts = [net(*(x[:, t : t + chunk] for x in seqs)) for t in range(0, steps, chunk)]
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(p, 1) for p in zip(*parts))
        return torch.cat(parts, 1)

    def standard_noise(
        self,
        batch: int,
        steps: int,
        height: int,
        width: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
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
        self._compile_mode, self._compiled = mode, {}

    def _free_running_step(
        self, step, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor
    ):
        """`step` (`self.step` or `self.prior_step`) as it runs: without gradients compiled (`compile_step`), or
        with `cuda_graphs` on CUDA its CUDA graph for these shapes, captured on first use; else as it is."""
        if torch.is_grad_enabled():
            return step
        if self._compile_mode is not None:
            if step.__name__ not in self._compiled:
                self._compiled[step.__name__] = CompiledStep(step, self._compile_mode)
            return self._compiled[step.__name__]
        if not (self.cuda_graphs and prev_feat.is_cuda):
            return step
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
        if key not in self._graphs:
            self._graphs[key] = CapturedStep(step, prev_feat, pose_feat, z, context)
        return self._graphs[key]

    def training_loss(
        self, frames: torch.Tensor, poses: torch.Tensor, beta: float, teacher_forcing: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training step's forward pass: the clip (B, T, 3, H, W) and its poses unrolled with z from the
        posterior -> (loss, mse, kl) of `sequence_loss`. `CVAEModule.training_step` and the benchmark's plain
        loop both run this."""
        preds, kls = self.unroll(poses, frames, use_posterior=True, teacher_forcing=teacher_forcing)
        return sequence_loss(preds, frames, kls, beta)

    def unroll(
        self,
        poses: torch.Tensor,
        frames: torch.Tensor,
        use_posterior: bool,
        teacher_forcing: bool,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict frames 1..T-1.

        poses:  (B, T, 3, H, W), the pose of every frame.
        frames: (B, T, 3, H, W) ground truth, or (B, 1, 3, H, W) (just the first frame) when neither
                the posterior nor teacher forcing needs the later ones.
        use_posterior: z ~ q(z | x_t, pose_t) (training) instead of the prior (inference): N(0, I), or the
               learned prior given the previous frame.
        teacher_forcing: the previous frame is the ground truth x_{t-1}, else the model's own output.
        noise: (B, T-1, N, H / s, W / s) (s = latent_scale) standard-normal draws behind z (the
               reparameterization's epsilon, or z itself under the prior); None draws them.
        Returns predictions (B, T-1, 3, H, W) and the KL of each step (T-1,) to the prior (zeros under the prior).
        Every step also sees the `first_frame_context` of frame 0, the one ground-truth frame inference has.
        """
        b, steps, _, h, w = poses.shape
        if (use_posterior or teacher_forcing) and frames.shape[1] < steps:
            raise ValueError(f"unroll needs {steps} ground-truth frames, got {frames.shape[1]}")
        # Ground-truth frames to encode: all for the posterior, 0..T-2 as previous frames, else just frame 0.
        known = steps if use_posterior else steps - 1 if teacher_forcing else 1
        truth_feat = self._over_time(partial(per_frame, self.frame_encoder), frames[:, :known])  # (B, known, F, H, W)
        pose_feat = self._over_time(self.label_encoder, poses[:, 1:])  # (B, T-1, L, H, W)
        if noise is None:
            noise = self.standard_noise(b, steps - 1, h, w, poses.device, dtype=pose_feat.dtype)
        context = self.first_frame_context(truth_feat[:, 0], poses[:, 0])  # (B, C, H, W)
        contexts = context.unsqueeze(1).expand(-1, steps - 1, *context.shape[1:])  # (B, T-1, C, H, W)
        learned = self.learned_prior is not None
        if use_posterior:
            mu, logvar = self._over_time(partial(per_frame, self.posterior), truth_feat[:, 1:], pose_feat)
            z = mu + noise * torch.exp(0.5 * logvar)  # reparameterization; mu, logvar (B, T-1, N, h, w)
            if learned:  # p(z_t | true x_{t-1}, pose_t): SVG-LP trains its prior on ground-truth frames
                prior_mu, prior_logvar = self._over_time(
                    partial(per_frame, self.prior_moments), truth_feat[:, : steps - 1], pose_feat, contexts
                )
                kls = gaussian_kl(mu, logvar, prior_mu, prior_logvar)  # (T-1,)
            else:
                kls = kl_to_standard_normal(mu, logvar)  # (T-1,)
        else:
            z, kls = noise, pose_feat.new_zeros(steps - 1)  # under a learned prior: its noise, z drawn below
        if teacher_forcing:
            if learned and not use_posterior:
                z = self._over_time(
                    partial(per_frame, self.prior_z), noise, truth_feat[:, : steps - 1], pose_feat, contexts
                )
            preds = self._over_time(partial(per_frame, self.decode), truth_feat[:, : steps - 1], pose_feat, z, contexts)
            return preds, kls  # (B, T-1, 3, H, W), (T-1,)
        prev_feat, preds = truth_feat[:, 0], []  # (B, F, H, W)
        from_prior = learned and not use_posterior
        step = self._free_running_step(
            self.prior_step if from_prior else self.step, prev_feat, pose_feat[:, 0], z[:, 0], context
        )
        for t in range(steps - 2):
            pred, prev_feat = step(prev_feat, pose_feat[:, t], z[:, t], context)
            preds.append(pred)
        last_z = self.prior_z(z[:, -1], prev_feat, pose_feat[:, -1], context) if from_prior else z[:, -1]
        preds.append(self.decode(prev_feat, pose_feat[:, -1], last_z, context))  # the last one is not re-encoded
        return torch.stack(preds, 1), kls
