"""A conditional VAE designed for the CPU (`model=small`): a small U-Net that composites its frame.

The template keeps every network at full resolution and paints each frame from scratch, so it must
learn to reproduce the background before it can learn anything about the figure. This design:

- works at 1/4 resolution inside (two stride-2 convolutions down, two upsamplings back, skips between);
- composites its output: per pixel, a softmax over its `sources`: the sequence's first frame (the one
  ground-truth frame inference has; the background there never drifts), a newly painted colour, each
  body part's colour in frame 0 painted where pose t puts it, optionally the empty room of the fixed
  camera (the training frames' per-pixel median: frame 0 without its person and its camera noise), and
  optionally the previous frame shifted by a predicted flow (without it the design
  reads no previous frame, so nothing accumulates);
- normalises with GroupNorm (per sample: the same in training and in 630-frame rollouts);
- draws z at 1/4 resolution (`latent_scale`).

Frame "features" are the frame's pixels followed by learned maps, so the decoder can read the pixels of
the previous and first frames; the interfaces are those of `sequence.SequenceCVAE`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvae_video.models.sequence import SequenceCVAE

SLOPE = 0.2


def group_norm(ch: int) -> nn.GroupNorm:
    """GroupNorm with groups of 8 channels (one group when 8 does not divide ch)."""
    return nn.GroupNorm(ch // 8 if ch % 8 == 0 else 1, ch)


def conv_norm_act(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, GroupNorm, LeakyReLU."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), group_norm(out_ch), nn.LeakyReLU(SLOPE))


class NormedResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(conv_norm_act(ch, ch), nn.Conv2d(ch, ch, 3, padding=1), group_norm(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.body(x), SLOPE)


class GlobalContext(nn.Module):
    """x + a 1x1 convolution of x's spatial mean: every position sees the whole frame (the figure's colours)."""

    def __init__(self, ch: int):
        super().__init__()
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(x.mean(dim=(2, 3), keepdim=True))


class PixelsAndFeatures(nn.Module):
    """Frame (N, 3, H, W) -> (N, F, H, W): its 3 colour channels, then F - 3 learned maps."""

    def __init__(self, out_ch: int):
        super().__init__()
        self.conv = conv_norm_act(3, out_ch - 3)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return torch.cat([frame, self.conv(frame)], 1)


class PoseFeatures(nn.Module):
    """Pose images of S steps (B, S, 3, H, W) -> (B, S, L, H, W), `layers` 3x3 convolutions deep (a limb's
    pixels lie up to a few pixels from its line in the pose image)."""

    def __init__(self, out_ch: int, layers: int = 1):
        super().__init__()
        self.conv = nn.Sequential(conv_norm_act(3, out_ch), *[conv_norm_act(out_ch, out_ch) for _ in range(layers - 1)])

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        return self.conv(poses.flatten(0, 1)).unflatten(0, poses.shape[:2])


class Down(nn.Sequential):
    """(N, C_in, H, W) -> (N, C_out, H / 4, W / 4)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int):
        super().__init__(conv_norm_act(in_ch, mid_ch, stride=2), conv_norm_act(mid_ch, out_ch, stride=2))


class UNetPosterior(nn.Module):
    """q(z | frame_t, pose_t): (N, F, H, W), (N, L, H, W) -> mu, logvar, each (N, Z, H / 4, W / 4)."""

    def __init__(self, in_ch: int, width: int, noise_ch: int):
        super().__init__()
        self.down = Down(in_ch, width // 2, width)
        self.out = nn.Conv2d(width, 2 * noise_ch, 1)

    def forward(self, frame_feat: torch.Tensor, pose_feat: torch.Tensor):
        mu, logvar = self.out(self.down(torch.cat([frame_feat, pose_feat], 1))).chunk(2, dim=1)
        return mu, logvar


class UNetFusion(nn.Module):
    """(previous frame, pose, first frame, first pose, part colour and code) (N, 2F+2L+3+code, H, W) and
    z (N, Z, H/4, W/4) -> features at full, half and quarter resolution: (N, C1, H, W), (N, C2, H/2, W/2),
    (N, C3, H/4, W/4)."""

    def __init__(self, in_ch: int, noise_ch: int, widths: tuple[int, int, int], blocks: int):
        super().__init__()
        c1, c2, c3 = widths
        self.at_full_res = conv_norm_act(in_ch, c1)
        self.to_half_res = conv_norm_act(c1, c2, stride=2)
        self.to_quarter_res = conv_norm_act(c2, c3, stride=2)
        self.mix = nn.Sequential(
            conv_norm_act(c3 + noise_ch, c3), GlobalContext(c3), *[NormedResidualBlock(c3) for _ in range(blocks)]
        )

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
        full = self.at_full_res(x)
        half = self.to_half_res(full)
        return [full, half, self.mix(torch.cat([self.to_quarter_res(half), z], 1))]


class UNetGenerator(nn.Module):
    """UNetFusion's three scales -> per pixel, 3 colour channels, `logits` source logits and a 2-d shift
    (N, 3 + logits + 2, H, W)."""

    def __init__(self, widths: tuple[int, int, int], logits: int):
        super().__init__()
        c1, c2, c3 = widths
        self.up_to_half = conv_norm_act(c3, c2)
        self.up_to_full = conv_norm_act(c2, c1)
        self.head = nn.Conv2d(c1, 3 + logits + 2, 3, padding=1)

    def forward(self, scales: list[torch.Tensor]) -> torch.Tensor:
        full, half, quarter = scales
        half = half + self.up_to_half(F.interpolate(quarter, scale_factor=2.0, mode="nearest"))
        full = full + self.up_to_full(F.interpolate(half, scale_factor=2.0, mode="nearest"))
        return self.head(full)


class PartAppearance(nn.Module):
    """The look of each body part in frame 0, painted where that part is in frame t.

    A 1x1 convolution of pose features gives, per pixel, a softmax over `parts` body parts and the
    background. Each part's look is the mean, over frame 0's pixels weighted by that part's map in pose 0,
    of frame 0's colour and of `code_dim` learned maps of its features; frame t gets, per pixel, the
    looks mixed by its own part maps: colour (N, 3, H, W) and code (N, code_dim, H, W).
    """

    def __init__(self, label_ch: int, frame_ch: int, parts: int, code_dim: int):
        super().__init__()
        self.parts = nn.Conv2d(label_ch, parts + 1, 1)
        self.code = nn.Conv2d(frame_ch, code_dim, 1)

    def forward(self, pose_feat: torch.Tensor, first_feat: torch.Tensor, first_pose_feat: torch.Tensor):
        where_0 = torch.softmax(self.parts(first_pose_feat), 1)[:, 1:]  # (N, K, H, W)
        where_t = torch.softmax(self.parts(pose_feat), 1)[:, 1:]  # (N, K, H, W)
        look = torch.cat([first_feat[:, :3], self.code(first_feat)], 1)  # (N, 3 + code, H, W)
        mean_look = torch.einsum("nkhw,nchw->nkc", where_0, look) / (where_0.sum((2, 3))[..., None] + 1e-3)
        painted = torch.einsum("nkhw,nkc->nchw", where_t, mean_look)  # (N, 3 + code, H, W)
        return painted[:, :3], painted[:, 3:]


class CompositingCVAE(SequenceCVAE):
    """frame_dim F (3 of them the pixels), label_dim L, noise_dim Z, widths (C1, C2, C3) of the U-Net's three
    scales, blocks: residual blocks at 1/4 resolution."""

    latent_scale = 4

    def __init__(
        self,
        frame_dim: int = 16,
        label_dim: int = 16,
        noise_dim: int = 8,
        widths: tuple[int, int, int] = (32, 64, 128),
        blocks: int = 2,
        max_shift: float = 4.0,
        sources: tuple[str, ...] = ("first", "previous", "paint", "parts"),
        parts: int = 10,
        code_dim: int = 16,
        label_layers: int = 1,
        room_size: tuple[int, int] = (32, 64),
        prior: str = "fixed",
    ):
        super().__init__(noise_dim, prior)
        self.max_shift, self.sources = max_shift, tuple(sources)
        self.reads_previous = "previous" in self.sources
        widths = tuple(widths)
        self.frame_encoder = PixelsAndFeatures(frame_dim)
        self.label_encoder = PoseFeatures(label_dim, label_layers)
        self.posterior = UNetPosterior(frame_dim + label_dim, widths[2], noise_dim)
        if prior == "learned":  # p(z_t | the previous frame, frame 0 and its pose, pose_t)
            self.learned_prior = UNetPosterior(2 * frame_dim + 2 * label_dim, widths[2], noise_dim)
        self.frame_dim = frame_dim
        self.appearance = PartAppearance(label_dim, frame_dim, parts, code_dim)
        self.fusion = UNetFusion(2 * frame_dim + 2 * label_dim + 3 + code_dim, noise_dim, widths, blocks)
        # At least 4 logits: the head's layout before the `room` source, which older checkpoints hold.
        self.generator = UNetGenerator(widths, max(4, len(self.sources)))
        if "room" in self.sources:  # set from the training frames before training (`set_room`); kept in checkpoints
            self.register_buffer("room", torch.full((1, 3, *room_size), 0.5))
        else:
            self.room = None

    def first_frame_context(self, first_feat: torch.Tensor, first_pose: torch.Tensor) -> torch.Tensor:
        """Frame 0's features and its pose's features: (N, F + L, H, W)."""
        return torch.cat([first_feat, self.label_encoder(first_pose[:, None])[:, 0]], 1)

    def prior_inputs(
        self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned prior reads the previous frame's features and frame 0's context (F + F + L channels), and
        this pose: what persists from frame to frame that no pose tells (a door left open) it can carry on, even
        where the decoder reads no previous frame."""
        return torch.cat([prev_feat, context], 1), pose_feat

    def decode(
        self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        first_feat, first_pose_feat = context[:, : self.frame_dim], context[:, self.frame_dim :]
        part_colour, part_code = self.appearance(pose_feat, first_feat, first_pose_feat)
        if not self.reads_previous:  # zeros in its place: one checkpoint layout serves both settings
            prev_feat = torch.zeros_like(prev_feat)
        x = torch.cat([prev_feat, pose_feat, first_feat, first_pose_feat, part_colour, part_code], 1)
        out = self.generator(self.fusion(x, z))  # (N, 3 + logits + 2, H, W)
        weights = torch.softmax(out[:, 3 : 3 + len(self.sources)], 1)  # (N, sources, H, W)
        make = {
            "first": lambda: first_feat[:, :3],
            "paint": lambda: torch.sigmoid(out[:, :3]),
            "parts": lambda: part_colour,
            "previous": lambda: self.shifted(prev_feat[:, :3], torch.tanh(out[:, -2:]) * self.max_shift),
            "room": lambda: self.room.expand(x.shape[0], -1, -1, -1),
        }
        sources = torch.stack([make[name]() for name in self.sources], 1)  # (N, sources, 3, H, W)
        return (weights.unsqueeze(2) * sources).sum(1)

    def set_room(self, background: torch.Tensor) -> None:
        """The room of source `room`: `background` (3, H, W) in [0, 1]; without that source, nothing."""
        if self.room is not None:
            if background.shape != self.room.shape[1:]:
                raise ValueError(f"background {tuple(background.shape)} != the room {tuple(self.room.shape[1:])}")
            self.room.copy_(background[None])

    def step(self, prev_feat: torch.Tensor, pose_feat: torch.Tensor, z: torch.Tensor, context: torch.Tensor):
        """A free-running step; where neither the decoder (the `previous` source) nor a learned prior reads the
        previous frame, the prediction is not encoded for the next step, and `prev_feat` is passed on as it is."""
        if self.reads_previous or self.learned_prior is not None:
            return super().step(prev_feat, pose_feat, z, context)
        return self.decode(prev_feat, pose_feat, z, context), prev_feat

    @staticmethod
    def shifted(image: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Backward warp: pixel p of the result is `image` at p + shift[p] (bilinear). image (N, 3, H, W),
        shift (N, 2, H, W) in pixels (x, y)."""
        n, _, h, w = image.shape
        ys, xs = torch.meshgrid(
            torch.arange(h, device=image.device, dtype=image.dtype),
            torch.arange(w, device=image.device, dtype=image.dtype),
            indexing="ij",
        )
        x = (xs + shift[:, 0]) * (2 / (w - 1)) - 1  # (N, H, W)
        y = (ys + shift[:, 1]) * (2 / (h - 1)) - 1
        return F.grid_sample(image, torch.stack([x, y], -1), mode="bilinear", padding_mode="border", align_corners=True)
