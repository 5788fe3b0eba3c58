"""The lab's reference loop (`shared/reference/seed_model.py`, outside the package), loaded by path, and its
inference loop: the baseline every row of `bench.steps` is compared with."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_MODEL_PATHS = [ROOT.parent / "shared/reference/seed_model.py", ROOT / "shared/reference/seed_model.py"]


def load_reference_model(path: Path | None):
    """The seed_model.py module, loaded by path (it is not part of the package), or None when absent."""
    for candidate in [path] if path else REFERENCE_MODEL_PATHS:
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location("seed_model", candidate)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


@torch.no_grad()
def reference_rollout(m, first: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
    """The template's inference loop with the reference's modules: per frame, encode the previous output and the
    pose, z ~ N(0, I), fuse, generate. first (B, 1, 3, H, W), poses (B, T, 3, H, W) -> (B, T-1, 3, H, W)."""
    b, steps, _, h, w = poses.shape
    noise_dim = m.post[-1].out_channels // 2
    out, preds = first[:, 0], []
    for t in range(1, steps):
        z = torch.randn(b, noise_dim, h, w, device=poses.device)
        out = torch.sigmoid(m.gen(m.fusion(m.frame(out), m.label(poses[:, t]), z)))
        preds.append(out)
    return torch.stack(preds, 1)
