"""The conditional VAE of the lab, as plain torch modules (no Lightning, no Hydra).

Data flow for one predicted frame t (all tensors keep the full H x W resolution):

    x_{t-1} --frame_encoder--> h_prev (B, F, H, W)
    pose_t  --label_encoder--> h_pose (B, L, H, W)
    x_t     --frame_encoder--> h_t --posterior(h_t, h_pose)--> z, mu, logvar (B, N, H, W)
    (h_prev, h_pose, z) --fusion--> (B, D, H, W) --generator--> x_hat_t (B, 3, H, W) in [0, 1]

`PoseCVAE.unroll` is the one time loop: training (posterior z, teacher forcing or own outputs) and
inference (prior z, own outputs) both run it.
"""
from __future__ import annotations

import torch
from torch import nn

SLOPE = 0.01  # LeakyReLU slope; the template's `LeakyReLU(True)` meant slope 1, i.e. no non-linearity


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


class LabelEncoder(nn.Sequential):
    """Pose image (B, 3, H, W) -> features (B, L, H, W)."""

    def __init__(self, out_ch: int):
        super().__init__(
            nn.ReflectionPad2d(3), nn.Conv2d(3, out_ch // 2, 7), nn.BatchNorm2d(out_ch // 2),
            nn.LeakyReLU(SLOPE), ResidualBlock(out_ch // 2, out_ch),
        )


class Posterior(nn.Module):
    """q(z | frame_t, pose_t): (B, F, H, W), (B, L, H, W) -> mu, logvar, each (B, N, H, W)."""

    def __init__(self, in_ch: int, noise_ch: int):
        super().__init__()
        n, quarter, half = noise_ch, max(noise_ch // 4, 1), max(noise_ch // 2, 1)
        self.net = nn.Sequential(
            ResidualBlock(in_ch, quarter), DepthConvBlock(quarter, quarter),
            ResidualBlock(quarter, half), DepthConvBlock(half, half),
            ResidualBlock(half, n), nn.LeakyReLU(SLOPE), nn.Conv2d(n, 2 * n, 1),
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
    """Fused features (B, D, H, W) -> frame (B, 3, H, W) in [0, 1] (the template lacked the sigmoid)."""

    def __init__(self, in_ch: int):
        c = in_ch
        super().__init__(
            DepthConvBlock(c, c), ResidualBlock(c, c // 2), DepthConvBlock(c // 2, c // 2),
            ResidualBlock(c // 2, c // 4), DepthConvBlock(c // 4, c // 4),
            ResidualBlock(c // 4, c // 8), DepthConvBlock(c // 8, c // 8),
            nn.Conv2d(c // 8, 3, 1), nn.Sigmoid(),
        )


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(0, I)) summed over latent elements, averaged over the batch (the lab's formula)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / mu.shape[0]


class PoseCVAE(nn.Module):
    """The lab's conditional VAE with widths F (frame), L (label), N (noise) and D (fusion)."""

    def __init__(self, frame_dim: int = 128, label_dim: int = 32, noise_dim: int = 12, fusion_dim: int = 192):
        super().__init__()
        self.noise_dim = noise_dim
        self.frame_encoder = FrameEncoder(frame_dim)
        self.label_encoder = LabelEncoder(label_dim)
        self.posterior = Posterior(frame_dim + label_dim, noise_dim)
        self.fusion = Fusion(frame_dim + label_dim + noise_dim, fusion_dim)
        self.generator = Generator(fusion_dim)

    def unroll(self, poses: torch.Tensor, frames: torch.Tensor, use_posterior: bool,
               teacher_forcing: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict frames 1..T-1 one step at a time.

        poses:  (B, T, 3, H, W), the pose of every frame.
        frames: (B, T, 3, H, W) ground truth, or (B, 1, 3, H, W) (just the first frame) when neither
                the posterior nor teacher forcing needs the later ones.
        use_posterior: z ~ q(z | x_t, pose_t) (training) instead of z ~ N(0, I) (inference).
        teacher_forcing: the previous frame is the ground truth x_{t-1}, else the model's own output.
        Returns predictions (B, T-1, 3, H, W) and the KL of each step (T-1,) (zeros under the prior).
        """
        needs_truth = use_posterior or teacher_forcing
        steps = poses.shape[1]
        if needs_truth and frames.shape[1] < steps:
            raise ValueError(f"unroll needs {steps} ground-truth frames, got {frames.shape[1]}")
        prev_feat = self.frame_encoder(frames[:, 0])                        # (B, F, H, W)
        preds, kls = [], []
        for t in range(1, steps):
            pose_feat = self.label_encoder(poses[:, t])                     # (B, L, H, W)
            truth_feat = self.frame_encoder(frames[:, t]) if needs_truth else None
            if use_posterior:
                mu, logvar = self.posterior(truth_feat, pose_feat)         # (B, N, H, W) each
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)     # reparameterization
                kls.append(kl_to_standard_normal(mu, logvar))
            else:
                b, _, h, w = pose_feat.shape
                z = torch.randn(b, self.noise_dim, h, w, device=pose_feat.device, dtype=pose_feat.dtype)
                kls.append(pose_feat.new_zeros(()))
            pred = self.generator(self.fusion(torch.cat([prev_feat, pose_feat, z], 1)))  # (B, 3, H, W)
            preds.append(pred)
            if t < steps - 1:
                prev_feat = truth_feat if teacher_forcing else self.frame_encoder(pred)
        return torch.stack(preds, 1), torch.stack(kls)
