"""The lab's networks, exactly as the course's template builds them (`model=template`): every network keeps the full
H x W resolution.

Blocks as the template's `modules/layers.py`: residual blocks (two 3x3 convolutions, LeakyReLU 0.01, a 1x1 skip
where widths differ) and depthwise-convolution blocks ending in a gated feed-forward; BatchNorm in the label
encoder only. At the lab's widths (F, L, N, D = 128, 32, 12, 192) the five networks have 1,585,620 parameters, as
the course's. The time loop is `sequence.py`'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvae_video.models.sequence import SequenceCVAE

SLOPE = 0.01  # LeakyReLU slope of the template's blocks
GATE_SLOPE = 0.1  # LeakyReLU slope of the gate of the depthwise blocks' feed-forward
TEMPLATE_SLOPE = 1.0  # the template's LeakyReLU(True) in the label encoder and the posterior: no non-linearity


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU; a 1x1 skip when the widths differ."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.LeakyReLU(SLOPE),
        )
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class GatedFeedForward(nn.Module):
    """x + conv_out(a * LeakyReLU_0.1(b)), where a and b are the halves of a 1x1 convolution to 4x the width."""

    def __init__(self, ch: int):
        super().__init__()
        self.expand = nn.Conv2d(ch, 4 * ch, 1)
        self.gate = nn.LeakyReLU(GATE_SLOPE)
        self.project = nn.Conv2d(2 * ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.expand(x).chunk(2, dim=1)  # (B, 2C, H, W) each
        return x + self.project(a * self.gate(b))


class DepthConvBlock(nn.Module):
    """1x1 (LeakyReLU 0.01), depthwise 3x3, 1x1, with a skip (1x1 where widths differ); then a gated feed-forward."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.depth = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 1),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch),
            nn.Conv2d(in_ch, out_ch, 1),
        )
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.ffn = GatedFeedForward(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.depth(x) + self.skip(x))


class FrameEncoder(nn.Sequential):
    """RGB frame (B, 3, H, W) -> features (B, F, H, W)."""

    def __init__(self, out_ch: int):
        super().__init__(
            ResidualBlock(3, out_ch // 8),
            DepthConvBlock(out_ch // 8, out_ch // 8),
            ResidualBlock(out_ch // 8, out_ch // 4),
            DepthConvBlock(out_ch // 4, out_ch // 4),
            ResidualBlock(out_ch // 4, out_ch // 2),
            DepthConvBlock(out_ch // 2, out_ch // 2),
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
        y = F.batch_norm(
            x.reshape(n // steps, steps * c, h, w),
            None,
            None,
            self.weight.repeat(steps),
            self.bias.repeat(steps),
            training=True,
            eps=self.eps,
        )
        with torch.no_grad():
            stats = self.running_mean.dtype  # float32 also under bf16 autocast
            per_step = x.detach().to(stats).reshape(n // steps, steps, c, h * w)
            mean, var = per_step.mean(dim=(0, 3)), per_step.var(dim=(0, 3))  # (S, C); var unbiased, as BatchNorm2d's
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

    def __init__(self, out_ch: int, slope: float = TEMPLATE_SLOPE):
        super().__init__(
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, out_ch // 2, 7),
            StepwiseBatchNorm2d(out_ch // 2),
            nn.LeakyReLU(slope),
            ResidualBlock(out_ch // 2, out_ch),
        )

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        b, s = poses.shape[:2]
        pad, conv, norm, act, block = self
        x = norm(conv(pad(poses.flatten(0, 1))), steps=s)  # (B * S, L/2, H, W)
        return block(act(x)).unflatten(0, (b, s))


class Posterior(nn.Module):
    """q(z | frame_t, pose_t): (B, F, H, W), (B, L, H, W) -> mu, logvar, each (B, N, H, W).

    slope: of the activation before the last 1x1 convolution; the template's `LeakyReLU(True)` is slope 1.
    """

    def __init__(self, in_ch: int, noise_ch: int, slope: float = TEMPLATE_SLOPE):
        super().__init__()
        n, quarter, half = noise_ch, max(noise_ch // 4, 1), max(noise_ch // 2, 1)
        self.net = nn.Sequential(
            ResidualBlock(in_ch, quarter),
            DepthConvBlock(quarter, quarter),
            ResidualBlock(quarter, half),
            DepthConvBlock(half, half),
            ResidualBlock(half, n),
            nn.LeakyReLU(slope),
            nn.Conv2d(n, 2 * n, 1),
        )

    def forward(self, frame_feat: torch.Tensor, pose_feat: torch.Tensor):
        mu, logvar = self.net(torch.cat([frame_feat, pose_feat], 1)).chunk(2, dim=1)
        return mu, logvar


class Fusion(nn.Sequential):
    """(previous-frame features, pose features, z) concatenated (B, F+L+N, H, W) -> (B, D, H, W)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            DepthConvBlock(in_ch, in_ch),
            ResidualBlock(in_ch, in_ch // 4),
            DepthConvBlock(in_ch // 4, in_ch // 2),
            ResidualBlock(in_ch // 2, in_ch // 2),
            DepthConvBlock(in_ch // 2, out_ch // 2),
            nn.Conv2d(out_ch // 2, out_ch, 1),
        )


class Generator(nn.Sequential):
    """Fused features (B, D, H, W) -> frame (B, 3, H, W); in [0, 1] with `sigmoid` (the template has none)."""

    def __init__(self, in_ch: int, sigmoid: bool = False):
        c = in_ch
        super().__init__(
            DepthConvBlock(c, c),
            ResidualBlock(c, c // 2),
            DepthConvBlock(c // 2, c // 2),
            ResidualBlock(c // 2, c // 4),
            DepthConvBlock(c // 4, c // 4),
            ResidualBlock(c // 4, c // 8),
            DepthConvBlock(c // 8, c // 8),
            nn.Conv2d(c // 8, 3, 1),
            *([nn.Sigmoid()] if sigmoid else []),
        )


class TemplateCVAE(SequenceCVAE):
    """The lab template's design with widths F (frame), L (label), N (noise) and D (fusion): every network
    keeps the full H x W resolution; the first frame's features are not used (the template has none)."""

    def __init__(
        self,
        frame_dim: int = 128,
        label_dim: int = 32,
        noise_dim: int = 12,
        fusion_dim: int = 192,
        label_slope: float = TEMPLATE_SLOPE,
        posterior_slope: float = TEMPLATE_SLOPE,
        output_sigmoid: bool = False,
        prior: str = "fixed",
    ):
        super().__init__(noise_dim, prior)
        self.frame_encoder = FrameEncoder(frame_dim)
        self.label_encoder = LabelEncoder(label_dim, label_slope)
        self.posterior = Posterior(frame_dim + label_dim, noise_dim, posterior_slope)
        if prior == "learned":  # p(z_t | previous frame, pose_t): the posterior's network, on what inference has
            self.learned_prior = Posterior(frame_dim + label_dim, noise_dim, posterior_slope)
        self.fusion = Fusion(frame_dim + label_dim + noise_dim, fusion_dim)
        self.generator = Generator(fusion_dim, output_sigmoid)

    def decode(
        self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """(B, F, H, W), (B, L, H, W), (B, N, H, W) -> the predicted frame (B, 3, H, W)."""
        return self.generator(self.fusion(torch.cat([prev_feat, pose_feat, z], 1)))
