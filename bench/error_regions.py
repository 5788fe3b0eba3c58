"""Where a checkpoint's validation error lies: on the person, where frame 0's person stood, or on the background.

    python -m bench.error_regions [CKPT ...] [--root data/performer_v1]

The empty room is the per-pixel median of every 11th training frame; a pixel of frame t is the person's (with his
shadow) where it differs from the room by more than 15 grey levels in some channel, the "ghost" where frame 0's
person stood and frame t's does not, the background elsewhere. For copy-first-frame, the room itself and each
checkpoint (one rollout, z from the validation seed 0): PSNR (the mean over frames), and each region's share of the
squared error with the PSNR the frames would have if that region's error were all there was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cvae_video.data.lab4 import read_sequence_split
from cvae_video.inference import load_module

PERSON_LEVELS = 15


def regions(frames: torch.Tensor, room: torch.Tensor) -> dict[str, torch.Tensor]:
    """frames (T, 3, H, W), room (3, H, W), both in [0, 1] -> masks (T, 1, H, W) of person, ghost, background."""
    person = ((frames - room).abs().amax(1, keepdim=True) > PERSON_LEVELS / 255).float()
    ghost = person[:1] * (1 - person)
    return {"person": person, "ghost": ghost, "background": (1 - person) * (1 - ghost)}


def report(name: str, pred: torch.Tensor, truth: torch.Tensor, masks: dict[str, torch.Tensor]) -> str:
    """pred, truth (T, 3, H, W) of the predicted frames; masks of the same frames."""
    error = (pred - truth).pow(2)
    psnr = (10 * torch.log10(1 / error.mean((1, 2, 3)))).mean()
    parts = []
    for region, mask in masks.items():
        mse = (error * mask).mean()  # this region's part of the mean squared error
        parts.append(f"{region} {mse / error.mean():.2f} ({10 * torch.log10(1 / mse):.1f} dB)")
    return f"{name:>16}: {psnr:.2f} dB; error share (PSNR if alone): " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpts", nargs="*")
    parser.add_argument("--root", type=Path, default=Path("data/performer_v1"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    train, _, _ = read_sequence_split(args.root, "train", 32, 64)
    room = train[::11].median(0).values.float() / 255
    frames, poses, _ = read_sequence_split(args.root, "val", 32, 64)
    frames, poses = frames.float() / 255, poses.float() / 255
    masks = {k: v[1:] for k, v in regions(frames, room).items()}
    truth = frames[1:]
    print(report("copy-first-frame", frames[:1].expand_as(truth), truth, masks))
    print(report("the room", room.expand_as(truth), truth, masks))
    for ckpt in args.ckpts:
        module, _ = load_module(ckpt, torch.device("cpu"))
        video = module.rollout(frames[None, :1], poses[None], torch.Generator().manual_seed(0))[0]
        print(report(Path(ckpt).parent.parent.name, video[1:], truth, masks))


if __name__ == "__main__":
    main()
