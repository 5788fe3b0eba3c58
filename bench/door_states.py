"""Whether a model's rollouts open and close the door of `data=synthetic_door` when the truth does.

    python -m bench.door_states CKPT [CKPT ...] [--root data/performer_door_v1] [--samples 10]

The door is open in a frame where the mean of its inner box (`performer.DOOR_BOX`, less a pixel each side) is
nearer the dark doorway than the closed door (`performer.DOORWAY`, the course look's door colour, the grey mean of
each); the performer passing in front of it reads alike in the truth and in a prediction.
For the validation sequence and each checkpoint's N rollouts (z from its prior, seeds 0..N-1 of a CPU generator):
the frames where the truth's door is open, its switches, and per sample the frames where the rollout's door is
open, its switches and the share of frames whose state agrees with the truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cvae_video.data import performer
from cvae_video.data.lab4 import read_sequence_split
from cvae_video.inference import load_module


def door_open(frames: torch.Tensor) -> torch.Tensor:
    """frames (T, 3, H, W) in [0, 1] -> (T,) bool: the door is open."""
    h, w = frames.shape[-2:]
    left, top, right, bottom = performer.DOOR_BOX
    box = frames[..., round(top * h) + 1 : round(bottom * h) - 1, round(left * w) + 1 : round(right * w) - 1]
    grey = box.mean((1, 2, 3))
    doorway, door = sum(performer.DOORWAY) / 765, sum(performer.COURSE_LOOK.door) / 765
    return (grey - doorway).abs() < (grey - door).abs()


def states(open_: torch.Tensor) -> str:
    return f"{int(open_.sum())} frames open, {int((open_[1:] != open_[:-1]).sum())} switches"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpts", nargs="+")
    parser.add_argument("--root", type=Path, default=Path("data/performer_door_v1"))
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    frames, poses, _ = read_sequence_split(args.root, "val", 32, 64)
    frames, poses = frames.float() / 255, poses.float() / 255
    truth = door_open(frames[1:])
    print(f"truth, {len(truth)} predicted frames: {states(truth)}")
    for ckpt in args.ckpts:
        module, _ = load_module(ckpt, torch.device("cpu"))
        for seed in range(args.samples):
            video = module.rollout(frames[None, :1], poses[None], torch.Generator().manual_seed(seed))[0]
            pred = door_open(video[1:])
            agree = (pred == truth).float().mean()
            print(f"{Path(ckpt).parent.parent.name} sample {seed}: {states(pred)}, agrees with the truth {agree:.2f}")


if __name__ == "__main__":
    main()
