"""Image quality per frame and per sample, with torchmetrics: right for any batch size.

The lab's code took one MSE over the whole batch; here every (sample, frame) pair gets its own value.
"""
from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.utilities import dim_zero_cat

PSNR_CEILING = 100.0   # dB: identical frames score this instead of infinity (JSON files stay finite)


def psnr_per_frame(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(B, T, C, H, W) images in [0, data_range] -> PSNR in dB of each frame of each sample, (B, T), at most
    PSNR_CEILING."""
    b, t = pred.shape[:2]
    values = peak_signal_noise_ratio(pred.flatten(0, 1).float(), target.flatten(0, 1).float(),
                                     data_range=data_range, reduction="none", dim=(1, 2, 3))
    return values.clamp(max=PSNR_CEILING).view(b, t)


def ssim_per_frame(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) images in [0, 1] -> SSIM of each frame of each sample, (B, T)."""
    b, t = pred.shape[:2]
    values = structural_similarity_index_measure(pred.flatten(0, 1).float(), target.flatten(0, 1).float(),
                                                 data_range=1.0, reduction="none")
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
