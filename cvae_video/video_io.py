"""Writing predicted videos: PNG frames, GIFs of panels side by side, and the course's submission CSV.

Videos come in as float tensors (T, 3, H, W) in [0, 1]; every pixel written is round(255 * value), the
same integers in the PNGs, the GIFs and the submission. Every file goes through `atomic.atomic_path`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from cvae_video.atomic import atomic_open, atomic_path

CAPTION_HEIGHT = 12  # pixels above the panels for their names and the frame index
GAP = 2  # white pixels between two panels (before scaling)
PIXEL_TEXT = [str(v) for v in range(256)]  # uint8 value -> its decimal text: a lookup, not str() per pixel


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] -> uint8 round(255 * value), any shape."""
    return video.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


def write_frames(folder: Path, video: torch.Tensor) -> None:
    """(T, 3, H, W) -> folder/frame{k}.png, k = 0..T-1."""
    pixels = to_uint8(video).permute(0, 2, 3, 1).numpy()  # (T, H, W, 3)
    for k, frame in enumerate(pixels):
        with atomic_path(folder / f"frame{k}.png") as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")


def write_gif(path: Path, panels: dict[str, torch.Tensor], fps: float, scale: int) -> None:
    """Panels named by their keys, each (T, 3, H, W), side by side in one GIF of T frames.

    Frames are enlarged `scale` times (nearest neighbour: the 32 x 64 pixels stay sharp); the caption
    row names the panels and counts the frames. All frames share one palette, fitted once on a sample
    of them and applied at the small size (not quantized per enlarged frame).
    """
    strips = []
    for video in panels.values():
        pixels = to_uint8(video).permute(0, 2, 3, 1).numpy()  # (T, H, W, 3)
        gap = np.full((pixels.shape[0], pixels.shape[1], GAP, 3), 255, np.uint8)
        strips += [pixels, gap]
    row = np.concatenate(strips[:-1], axis=2)  # (T, H, P*W + gaps, 3)
    steps, height, width = row.shape[:3]
    palette = shared_palette(row)
    ink, paper = nearest_colour(palette, (0, 0, 0)), nearest_colour(palette, (255, 255, 255))
    size = (scale * width, scale * height + CAPTION_HEIGHT)
    panel_width = scale * (next(iter(panels.values())).shape[-1] + GAP)
    template = Image.new("P", size, paper)  # the panel names, drawn once
    template.putpalette(palette.getpalette())
    for p, name in enumerate(panels):
        ImageDraw.Draw(template).text((p * panel_width + 2, 0), name, fill=ink)
    frames = []
    for k in range(steps):
        small = Image.fromarray(row[k]).quantize(palette=palette, dither=Image.Dither.NONE)
        frame = template.copy()
        frame.paste(small.resize((size[0], size[1] - CAPTION_HEIGHT), Image.NEAREST), (0, CAPTION_HEIGHT))
        draw = ImageDraw.Draw(frame)
        counter = f"frame {k}"  # right-aligned in the first panel
        draw.text((panel_width - scale * GAP - draw.textlength(counter) - 2, 0), counter, fill=ink)
        frames.append(frame)
    with atomic_path(path) as tmp:  # optimize=False: the palette is shared, there is nothing to prune
        frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=round(1000 / fps),
            loop=0,
            optimize=False,
        )


def shared_palette(frames: np.ndarray, sample: int = 64) -> Image.Image:
    """A 256-colour palette image fitted on up to `sample` of the frames (T, H, W, 3), black and white included."""
    picked = frames[:: max(1, len(frames) // sample)]
    extremes = np.zeros((2, frames.shape[2], 3), np.uint8)
    extremes[1] = 255
    mosaic = np.concatenate([picked.reshape(-1, frames.shape[2], 3), extremes])  # (n*H + 2, W, 3)
    return Image.fromarray(mosaic).quantize(colors=256)


def nearest_colour(palette: Image.Image, rgb: tuple[int, int, int]) -> int:
    """Index of the palette entry closest to `rgb`."""
    entries = np.array(palette.getpalette()[: 3 * 256]).reshape(-1, 3)
    return int(np.abs(entries - np.array(rgb)).sum(1).argmin())


def write_submission(path: Path, videos: torch.Tensor) -> int:
    """The course's submission file from S videos (S, T, 3, H, W); returns the number of rows.

    Header `id,0,1,...,3*H*W-1`, then one row per frame: row id = s * T + k, then its pixels as
    integers in (C, H, W) order.
    """
    pixels = to_uint8(videos).flatten(2).flatten(0, 1).numpy()  # (S*T, 3*H*W)
    with atomic_open(path, "w", newline="") as f:
        f.write("id," + ",".join(str(c) for c in range(pixels.shape[1])) + "\n")
        for row_id, row in enumerate(pixels):
            f.write(f"{row_id}," + ",".join(map(PIXEL_TEXT.__getitem__, row.tolist())) + "\n")
    return len(pixels)
