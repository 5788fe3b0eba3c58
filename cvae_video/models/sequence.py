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

from collections.abc import Callable

import torch
from torch import nn

# `time_chunk=None`: as many time steps per network call as keep a call within this many frames (B x steps); the
# choice rests on `python -m bench.steps --chunk-sweep` (docs/experiments.md, "Speed").
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


def gaussian_kl_terms(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor):
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) of each latent element, at least in float32; mu_q's shape."""
    dtype = torch.promote_types(mu_q.dtype, torch.float32)
    mu_q, logvar_q, mu_p, logvar_p = (x.to(dtype) for x in (mu_q, logvar_q, mu_p, logvar_p))
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1)


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) between diagonal Gaussians, normalised as
    `kl_to_standard_normal` (summed over latent elements, averaged over the batch; at least float32).
    (B, T, N, h, w) each -> (T,)."""
    return gaussian_kl_terms(mu_q, logvar_q, mu_p, logvar_p).sum(dim=(0, -3, -2, -1)) / mu_q.shape[0]


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


def on_frames(net: Callable) -> Callable:
    """`net`, a network on frames (N, ...), as a function of sequences (B, S, ...): one batch of B * S frames."""

    def run(*seqs: torch.Tensor):
        b, s = seqs[0].shape[:2]
        out = net(*(x.flatten(0, 1) for x in seqs))
        if isinstance(out, tuple):
            return tuple(o.unflatten(0, (b, s)) for o in out)
        return out.unflatten(0, (b, s))

    return run


class SequenceCVAE(nn.Module):
    """The time loop shared by every design: `unroll`, for training and inference.

    A design (a subclass) builds `frame_encoder` (N, 3, H, W) -> (N, F, H, W), `label_encoder`
    (B, S, 3, H, W) -> (B, S, L, H, W), `posterior` (frame features, pose features) -> mu, logvar
    (N, noise_dim, H / latent_scale, W / latent_scale), and `decode`.

    prior: "fixed" (z ~ N(0, I) at test time, the lab's) or "learned" (SVG-LP, Denton & Fergus 2018): a design
        then also builds `learned_prior`, a network like its posterior that reads `prior_inputs` (what the model
        knows at test time) and gives p(z_t | ...); training minimises KL(q || p) with p given the true previous
        frame, and inference draws z from p given the model's own previous frame.

    How the loop runs, never what it computes, is set from outside (`models.acceleration.configure`):
    `time_chunk`, the time steps per network call wherever steps are independent (1: one call per step, 0: all,
    None: by device, `FRAMES_PER_CALL`; the label encoder's BatchNorm keeps per-step statistics), and
    `fast_step`, which may swap a free-running step without gradients for a faster one (CUDA graphs,
    torch.compile).
    """

    PRIORS = ("fixed", "learned")

    latent_scale = 1  # the latent's downsampling factor against the frame
    time_chunk: int | None = None
    fast_step: Callable | None = None  # (step, *its first inputs) -> the step to run instead

    def __init__(self, noise_dim: int, prior: str = "fixed"):
        super().__init__()
        if prior not in self.PRIORS:
            raise ValueError(f"prior must be one of {self.PRIORS}, got {prior!r}")
        self.noise_dim = noise_dim
        self.learned_prior: nn.Module | None = None  # built by a design when prior == "learned"

    # -- what a design provides -------------------------------------------------------------------------------

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

    def set_room(self, background: torch.Tensor) -> None:
        """Before training: what a design keeps of the training frames' per-pixel median `background` (3, H, W),
        the empty room of a fixed camera. Here nothing."""

    def prior_inputs(
        self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the learned prior reads, the two inputs of a posterior-like network: here the previous frame's
        features and this frame's pose features."""
        return prev_feat, pose_feat

    # -- the latent -------------------------------------------------------------------------------------------

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

    def moments(self, truth_feat: torch.Tensor, pose_feat: torch.Tensor, contexts: torch.Tensor):
        """mu, logvar of q(z | x_t, pose_t) at every predicted step, each (B, T-1, N, h, w), and the prior's: None
        for N(0, I), else the learned prior given the true previous frame (as SVG-LP trains it)."""
        mu, logvar = self.over_time(on_frames(self.posterior), truth_feat[:, 1:], pose_feat)  # (B, T-1, N, h, w)
        if self.learned_prior is None:
            return mu, logvar, None, None
        previous = truth_feat[:, : pose_feat.shape[1]]
        prior_mu, prior_logvar = self.over_time(on_frames(self.prior_moments), previous, pose_feat, contexts)
        return mu, logvar, prior_mu, prior_logvar

    def posterior_z(self, noise: torch.Tensor, truth_feat: torch.Tensor, pose_feat: torch.Tensor, contexts):
        """z_t ~ q(z | x_t, pose_t) by the reparameterization, (B, T-1, N, h, w), and each step's KL (T-1,) to the
        prior (`moments`)."""
        mu, logvar, prior_mu, prior_logvar = self.moments(truth_feat, pose_feat, contexts)
        z = mu + noise * torch.exp(0.5 * logvar)
        if prior_mu is None:
            return z, kl_to_standard_normal(mu, logvar)
        return z, gaussian_kl(mu, logvar, prior_mu, prior_logvar)

    def known_features(self, frames: torch.Tensor, poses: torch.Tensor):
        """What no prediction changes, all steps at once: the features of the true frames given (B, K, 3, H, W),
        (B, K, F, H, W); of the poses of the T-1 predicted frames (poses (B, T, 3, H, W)), (B, T-1, L, H, W); and
        frame 0's context, (B, C, H, W) and repeated for each predicted frame, (B, T-1, C, H, W)."""
        truth_feat = self.over_time(on_frames(self.frame_encoder), frames)  # (B, K, F, H, W)
        pose_feat = self.over_time(self.label_encoder, poses[:, 1:])  # (B, T-1, L, H, W)
        context = self.first_frame_context(truth_feat[:, 0], poses[:, 0])  # (B, C, H, W)
        contexts = context.unsqueeze(1).expand(-1, pose_feat.shape[1], *context.shape[1:])  # (B, T-1, C, H, W)
        return truth_feat, pose_feat, context, contexts

    def latent_moments(self, frames: torch.Tensor, poses: torch.Tensor):
        """`moments` for true sequences (B, T, 3, H, W) and their poses, the prior's as tensors (zeros for
        N(0, I)): mu, logvar, prior_mu, prior_logvar, each (B, T-1, N, h, w)."""
        truth_feat, pose_feat, _, contexts = self.known_features(frames, poses)
        mu, logvar, prior_mu, prior_logvar = self.moments(truth_feat, pose_feat, contexts)
        if prior_mu is None:
            prior_mu, prior_logvar = torch.zeros_like(mu), torch.zeros_like(logvar)
        return mu, logvar, prior_mu, prior_logvar

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

    # -- the time loop ----------------------------------------------------------------------------------------

    def over_time(self, net: Callable, *seqs: torch.Tensor):
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

    def training_loss(
        self, frames: torch.Tensor, poses: torch.Tensor, beta: float, teacher_forcing: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training step's forward pass: the clip (B, T, 3, H, W) and its poses unrolled with z from the
        posterior -> (loss, mse, kl) of `sequence_loss`."""
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
        n = steps - 1  # the frames to predict
        if (use_posterior or teacher_forcing) and frames.shape[1] < steps:
            raise ValueError(f"unroll needs {steps} ground-truth frames, got {frames.shape[1]}")
        from_prior = self.learned_prior is not None and not use_posterior

        # 1. What no prediction changes, for all its steps at once: the true frames the posterior or teacher
        #    forcing reads (else frame 0 alone), the poses, and frame 0's context.
        known = steps if use_posterior else n if teacher_forcing else 1
        truth_feat, pose_feat, context, contexts = self.known_features(frames[:, :known], poses)
        if noise is None:
            noise = self.standard_noise(b, n, h, w, poses.device, dtype=pose_feat.dtype)  # (B, n, N, h, w)

        # 2. z of every step: the posterior's (training), else the prior's (a learned prior's is drawn below, from
        #    each step's previous frame).
        if use_posterior:
            z, kls = self.posterior_z(noise, truth_feat, pose_feat, contexts)  # (B, n, N, h, w), (n,)
        else:
            z, kls = noise, pose_feat.new_zeros(n)

        # 3. The frames. Teacher-forced, every previous frame is a true one: all steps at once.
        if teacher_forcing:
            if from_prior:
                z = self.over_time(on_frames(self.prior_z), noise, truth_feat[:, :n], pose_feat, contexts)
            preds = self.over_time(on_frames(self.decode), truth_feat[:, :n], pose_feat, z, contexts)
            return preds, kls  # (B, n, 3, H, W), (n,)

        # Free-running: each frame from the one predicted before it, one step at a time.
        step = self.prior_step if from_prior else self.step
        prev_feat, preds = truth_feat[:, 0], []  # (B, F, H, W)
        if self.fast_step is not None and not torch.is_grad_enabled():
            step = self.fast_step(step, prev_feat, pose_feat[:, 0], z[:, 0], context)
        for t in range(n - 1):
            pred, prev_feat = step(prev_feat, pose_feat[:, t], z[:, t], context)  # (B, 3, H, W), (B, F, H, W)
            preds.append(pred)
        last_z = self.prior_z(z[:, -1], prev_feat, pose_feat[:, -1], context) if from_prior else z[:, -1]
        preds.append(self.decode(prev_feat, pose_feat[:, -1], last_z, context))  # the last one is not re-encoded
        return torch.stack(preds, 1), kls  # (B, n, 3, H, W), (n,)
