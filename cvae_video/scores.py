"""Scores of predicted videos against the truth, and the baselines they are compared with.

Every score is kept per sample and per frame first (`metrics.psnr_per_frame`, `ssim_per_frame`) and
only then averaged, so it is right for any batch size.
"""
from __future__ import annotations

import torch

from cvae_video.metrics import psnr_per_frame, ssim_per_frame

KAGGLE_FRAMES = slice(1, 601)   # the course's scorer: frames 1-600 of each sequence (not 0, not 601-629)


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
    best = scores["psnr"].mean(-1).argmax(0)                                # (B,) sample index per sequence
    sequences = torch.arange(best.shape[0])
    return {name: values[best, sequences] for name, values in scores.items()}
