"""Scores of predicted videos against the truth, per frame and per sample (torchmetrics), and the baselines
they are compared with.

The lab's code took one MSE over the whole batch; here every (sample, frame) pair gets its own value first
and is only then averaged, so every score is right for any batch size.
"""

from __future__ import annotations

import functools

import torch
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.utilities import dim_zero_cat

from cvae_video.scoring import KAGGLE_FRAMES, PSNR_CEILING


def in_float32(score):
    """Run a score in float32 also inside a mixed-precision Trainer's validation: under bf16 autocast SSIM's
    Gaussian filter (a convolution) runs in bf16, and its variances lose so much that SSIM leaves [-1, 1]."""

    @functools.wraps(score)
    def scored(pred: torch.Tensor, target: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with torch.autocast(pred.device.type, enabled=False):
            return score(pred.float(), target.float(), *args, **kwargs)

    return scored


@in_float32
def psnr_per_frame(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(B, T, C, H, W) images in [0, data_range] -> PSNR in dB of each frame of each sample, (B, T), at most
    PSNR_CEILING."""
    b, t = pred.shape[:2]
    values = peak_signal_noise_ratio(
        pred.flatten(0, 1), target.flatten(0, 1), data_range=data_range, reduction="none", dim=(1, 2, 3)
    )
    return values.clamp(max=PSNR_CEILING).view(b, t)


@in_float32
def ssim_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) images in [0, 1] -> SSIM of each frame of each sample, (B, T)."""
    b, t = pred.shape[:2]
    values = structural_similarity_index_measure(
        pred.flatten(0, 1), target.flatten(0, 1), data_range=1.0, reduction="none"
    )
    return values.view(b, t)


class PerFrameMean(Metric):
    """Mean over samples of a per-frame curve: update with (B, T) values, compute gives (T,).

    Rows are gathered across processes under DDP, so the curve covers every validation sample.
    """

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, values: torch.Tensor) -> None:
        self.rows.append(values.detach())

    def compute(self) -> torch.Tensor:
        return dim_zero_cat(self.rows).mean(0)


def frame_scores(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Predicted and true frames (B, T, 3, H, W) -> {"psnr": (B, T), "ssim": (B, T)}."""
    return {"psnr": psnr_per_frame(pred, truth), "ssim": ssim_per_frame(pred, truth)}


def kaggle_psnr(video: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The course's Kaggle score per sequence: PSNR per frame on the rounded 0-255 pixels (as in the submission
    file), over frames 1-600, averaged over those frames. Whole sequences (B, T, 3, H, W) in [0, 1], frame 0 the
    given one -> (B,). Shorter sequences are scored over the frames they have."""
    scored = (video[:, KAGGLE_FRAMES].clamp(0, 1) * 255).round(), (truth[:, KAGGLE_FRAMES] * 255).round()
    return psnr_per_frame(*scored, data_range=255.0).mean(1)


def summary(scores: dict[str, torch.Tensor]) -> dict:
    """{"psnr": (..., T), "ssim": (..., T)} -> `psnr_mean`, `ssim_mean` (over everything) and
    `psnr_per_frame`, `ssim_per_frame` (T values: the mean over all leading dimensions)."""
    out = {}
    for name, values in scores.items():
        out[f"{name}_mean"] = values.mean().item()
        out[f"{name}_per_frame"] = values.flatten(0, -2).mean(0).tolist()
    return out


def copy_first_frame(frames: torch.Tensor) -> torch.Tensor:
    """Baseline: every later frame is the first one. (B, T, 3, H, W) -> predictions of frames 1..T-1."""
    return frames[:, :1].expand(-1, frames.shape[1] - 1, -1, -1, -1)


def copy_previous_frame(frames: torch.Tensor) -> torch.Tensor:
    """Reference: frame t is the true frame t-1, which no rollout can see (an upper bar, not a rival).
    (B, T, 3, H, W) -> predictions of frames 1..T-1."""
    return frames[:, :-1]


def best_of_n(scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per sequence, the sample with the highest mean PSNR (as stochastic video prediction papers report).

    scores: {"psnr": (N, B, T), "ssim": (N, B, T)} for N samples of B sequences -> the same keys, (B, T).
    """
    best = scores["psnr"].mean(-1).argmax(0)  # (B,) sample index per sequence
    sequences = torch.arange(best.shape[0])
    return {name: values[best, sequences] for name, values in scores.items()}
