"""Reading checkpoints written by training, with one-line errors for a wrong path or a wrong model size."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cvae_video.errors import UserError


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict (weights_only: no code runs on load); `UserError` if missing or unreadable."""
    path = Path(path)
    if path.is_dir():
        inside = next((c for c in (path / "last.ckpt", path / "checkpoints" / "last.ckpt") if c.is_file()), None)
        hint = f"ckpt_path={inside}" if inside else "ckpt_path=<run dir>/checkpoints/last.ckpt"
        raise UserError(f"ckpt_path {path} is a folder, not a checkpoint file: give the file, e.g. {hint}")
    if not path.is_file():
        raise UserError(f"ckpt_path {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a truncated or foreign file
        raise UserError(f"ckpt_path {path}: not a readable checkpoint ({type(err).__name__})") from None


def check_matches(module: nn.Module, checkpoint: dict, path: str | Path) -> None:
    """`UserError` naming the first parameter whose shape differs (a checkpoint of another model size)."""
    own = module.state_dict()
    for name, tensor in checkpoint["state_dict"].items():
        if name in own and own[name].shape != tensor.shape:
            raise UserError(
                f"ckpt_path {path} is for another model size: {name} has shape "
                f"{tuple(tensor.shape)} there, {tuple(own[name].shape)} in this model (model=...?)"
            )
    missing = own.keys() - checkpoint["state_dict"].keys()
    if missing:
        raise UserError(f"ckpt_path {path} lacks {len(missing)} parameters of this model, e.g. {sorted(missing)[0]}")
