"""Reading the LAB4 folder layout into memory: frame lists sorted by their integer index, images as uint8.

    root/train/train_img/frame{k}.png     root/train/train_label/frame{k}.png
    root/val/val_img/frame{k}.png         root/val/val_label/frame{k}.png
    root/test/test_img/{i}/frame0.png     root/test/test_label/{i}/frame{k}.png
    root/test/test_gt/{i}/frame{k}.png    (optional: held-out test frames, the synthetic set has them)
    root/train/segments.json              (optional: first index of each video; clips never cross one)

Every problem found is raised as `DataError` with one line naming the file or folder.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from cvae_video.errors import UserError

log = logging.getLogger(__name__)
FRAME_NAME = re.compile(r"^frame(\d+)\.png$")
LAYOUT = (
    "expected LAB4 layout: train/train_img, train/train_label, val/val_img, val/val_label, test/test_img/{i}, "
    "test/test_label/{i}"
)


class DataError(UserError):
    """A problem with the data on disk; the message names the file or folder."""


def indexed_frames(folder: Path) -> dict[int, Path]:
    """{k: folder/frame{k}.png}, in integer order (frame2 before frame10)."""
    if not folder.is_dir():
        raise DataError(f"missing folder {folder} ({LAYOUT})")
    frames: dict[int, Path] = {}
    for path in folder.iterdir():
        if path.suffix.lower() != ".png":
            continue
        match = FRAME_NAME.match(path.name)
        if match is None:
            raise DataError(f"{path}: image name has no frame index (expected frame{{k}}.png)")
        k = int(match.group(1))
        if k in frames:
            raise DataError(f"{path}: duplicate frame index {k} (also {frames[k].name})")
        frames[k] = path
    if not frames:
        raise DataError(f"empty folder {folder}: no frame{{k}}.png images")
    return dict(sorted(frames.items()))


def paired_frames(image_dir: Path, label_dir: Path) -> tuple[list[Path], list[Path]]:
    """Frames and their pose images, matched by index; a frame without its pose (or the reverse) is an error."""
    images, labels = indexed_frames(image_dir), indexed_frames(label_dir)
    for k in images.keys() - labels.keys():
        raise DataError(f"{images[k]} has no pose image {label_dir / images[k].name}")
    for k in labels.keys() - images.keys():
        raise DataError(f"{labels[k]} has no frame {image_dir / labels[k].name}")
    return list(images.values()), list(labels.values())


def load_images(paths: list[Path], height: int, width: int) -> torch.Tensor:
    """Decode, convert to RGB and resize to (height, width), saying so once: uint8 tensor (N, 3, H, W).

    All images of one list must share one size on disk (a mix means frames from different sources).
    """
    out = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    first_size = None
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img.load()
                if first_size is None:
                    first_size = img.size
                elif img.size != first_size:
                    raise DataError(
                        f"{path}: size {img.size[0]}x{img.size[1]} differs from "
                        f"{first_size[0]}x{first_size[1]} of {paths[0]}"
                    )
                rgb = img.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise DataError(f"{path}: unreadable or corrupt PNG ({err})") from None
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.BILINEAR)
        out[i] = np.asarray(rgb)
    if first_size is not None and first_size != (width, height):
        log.warning(
            f"{paths[0].parent}: images of {first_size[0]}x{first_size[1]} resized to {width}x{height} "
            f"(data.frame_W x data.frame_H)"
        )
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) -> (N, 3, H, W)


def video_starts(split_dir: Path, first_index: int) -> list[int]:
    """Positions (in the sorted frame list) where a new video begins: from segments.json, else one video."""
    segments = split_dir / "segments.json"
    if not segments.exists():
        return [0]
    try:
        starts = json.loads(segments.read_text())["starts"]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f'{segments}: expected {{"starts": [frame indices]}} ({err})') from None
    return sorted(int(s) - first_index for s in starts)


def clip_span(clip_len: int, frame_step: int = 1, first_gap: int = 0) -> int:
    """The frames a clip spans: `clip_len` frames `frame_step` apart, or with `first_gap` > 0 its first frame up
    to `first_gap` frames before the second (`Clips`)."""
    return (first_gap or frame_step) + (clip_len - 2) * frame_step + 1


def clip_windows(starts: list[int], total: int, clip_len: int, frame_step: int = 1, first_gap: int = 0) -> list[int]:
    """First positions of windows of `clip_span` frames that stay within one video.

    Windows start `clip_len // frame_step` frames apart (at least 1): with frame_step 1 they do not overlap
    (the lab's clips); a longer step spreads a clip over more of its video. With `first_gap` > 0 they start at
    every frame that leaves room for the longest gap.
    """
    span = clip_span(clip_len, frame_step, first_gap)
    spacing = 1 if first_gap else max(1, clip_len // frame_step)
    ends = starts[1:] + [total]
    return [s for a, b in zip(starts, ends) for s in range(a, b - span + 1, spacing)]


def read_sequence_split(root: Path, split: str, height: int, width: int):
    """train or val: (frames uint8 (N, 3, H, W), poses uint8 (N, 3, H, W), video starts)."""
    split_dir = root / split
    image_paths, label_paths = paired_frames(split_dir / f"{split}_img", split_dir / f"{split}_label")
    first = int(FRAME_NAME.match(image_paths[0].name).group(1))
    return (
        load_images(image_paths, height, width),
        load_images(label_paths, height, width),
        video_starts(split_dir, first),
    )


def read_test_split(root: Path, height: int, width: int) -> list[dict]:
    """One dict per test sequence, in integer order of its folder name: id, first frame, poses, truth (or None)."""
    test = root / "test"
    label_root = test / "test_label"
    if not label_root.is_dir():
        raise DataError(f"missing folder {label_root} ({LAYOUT})")
    ids = sorted(int(d.name) for d in label_root.iterdir() if d.is_dir() and d.name.isdigit())
    if not ids:
        raise DataError(f"empty folder {label_root}: no test sequences {{i}}/")
    sequences = []
    for i in ids:
        label_paths = list(indexed_frames(label_root / str(i)).values())
        first_path = test / "test_img" / str(i) / "frame0.png"
        if not first_path.exists():
            raise DataError(f"missing first frame {first_path} of test sequence {i}")
        truth_dir = test / "test_gt" / str(i)
        truth = load_images(list(indexed_frames(truth_dir).values()), height, width) if truth_dir.is_dir() else None
        sequences.append(
            {
                "id": i,
                "first_frame": load_images([first_path], height, width)[0],
                "poses": load_images(label_paths, height, width),
                "truth": truth,
            }
        )
    return sequences
