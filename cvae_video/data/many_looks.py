"""The many-looks synthetic scene (`data=synthetic_many`): a stick figure that dances, drawn with pillow.

Every video draws a new appearance (background colour and texture, limb colours and widths, body
proportions, head size) and a smooth random dance (joint angles and a body position that wanders
across the frame, each a sum of slow sinusoids). A frame is a deterministic function of
(appearance, pose) and the appearance is fully visible in frame 0, so a model can learn the task;
the label is the pose as a pose estimator renders it: coloured limbs on black. Unlike the course's
data (one performer, one room), no look repeats between videos: a test of generalisation to new looks.
`cvae_video.data.synthetic` writes the videos in the LAB4 layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# Limbs as (from joint, to joint); the label palette gives each limb its own colour, as OpenPose does.
LIMBS = [
    ("hip", "neck"),
    ("neck", "head"),
    ("neck", "l_elbow"),
    ("l_elbow", "l_hand"),
    ("neck", "r_elbow"),
    ("r_elbow", "r_hand"),
    ("hip", "l_knee"),
    ("l_knee", "l_foot"),
    ("hip", "r_knee"),
    ("r_knee", "r_foot"),
]
LABEL_PALETTE = [
    (255, 0, 0),
    (255, 170, 0),
    (170, 255, 0),
    (0, 255, 0),
    (0, 255, 170),
    (0, 170, 255),
    (0, 0, 255),
    (170, 0, 255),
    (255, 0, 170),
    (255, 255, 255),
]
SUPERSAMPLE = 4  # draw at 4x the saved size, then downsample: smooth edges


@dataclass
class Appearance:
    background: tuple  # RGB
    texture: str  # "flat", "stripes", "checker" or "gradient"
    texture_colour: tuple
    texture_period: float  # fraction of the frame height
    limb_colours: list  # one RGB per limb
    limb_widths: list  # fraction of the frame height, one per limb
    lengths: dict  # segment lengths, fraction of the frame height
    head_radius: float


def random_appearance(rng: np.random.Generator) -> Appearance:
    colour = lambda: tuple(int(c) for c in rng.integers(0, 256, 3))
    torso, arm, leg = colour(), colour(), colour()
    limb_colours = [torso, colour()] + [arm] * 4 + [leg] * 4
    return Appearance(
        background=colour(),
        texture=str(rng.choice(["flat", "stripes", "checker", "gradient"])),
        texture_colour=colour(),
        texture_period=float(rng.uniform(0.15, 0.5)),
        limb_colours=limb_colours,
        limb_widths=[float(rng.uniform(0.05, 0.12))]
        + [float(rng.uniform(0.03, 0.06))]
        + [float(rng.uniform(0.03, 0.08))] * 4
        + [float(rng.uniform(0.04, 0.09))] * 4,
        lengths={
            "torso": float(rng.uniform(0.22, 0.32)),
            "neck": float(rng.uniform(0.06, 0.1)),
            "upper_arm": float(rng.uniform(0.12, 0.18)),
            "fore_arm": float(rng.uniform(0.1, 0.16)),
            "thigh": float(rng.uniform(0.15, 0.22)),
            "shin": float(rng.uniform(0.13, 0.2)),
        },
        head_radius=float(rng.uniform(0.06, 0.1)),
    )


def random_dance(rng: np.random.Generator, frames: int, fps: float = 30.0) -> dict[str, np.ndarray]:
    """Smooth trajectories of the pose parameters: each a base value plus three random sinusoids."""
    t = np.arange(frames) / fps

    def wave(base: float, amplitude: float) -> np.ndarray:
        freqs = rng.uniform(0.05, 0.6, 3)
        phases = rng.uniform(0, 2 * math.pi, 3)
        weights = rng.dirichlet(np.ones(3)) * amplitude
        return base + sum(w * np.sin(2 * math.pi * f * t + p) for w, f, p in zip(weights, freqs, phases))

    return {
        "x": wave(0.5, 0.3),  # hip position, fraction of the width: wanders across the frame
        "y": wave(0.58, 0.05),  # fraction of the height
        "torso": wave(0.0, 0.35),  # radians from vertical
        "l_shoulder": wave(-2.3, 1.0),
        "r_shoulder": wave(2.3, 1.0),
        "l_elbow": wave(0.6, 0.6),
        "r_elbow": wave(-0.6, 0.6),
        "l_hip": wave(-0.3, 0.4),
        "r_hip": wave(0.3, 0.4),
        "l_knee": wave(0.3, 0.4),
        "r_knee": wave(-0.3, 0.4),
    }


def joints(pose: dict[str, float], look: Appearance, height: float, width: float) -> dict[str, tuple]:
    """Joint positions in pixels; angles are measured from 'straight down' (0) counter-clockwise."""

    def step(origin, angle, length):
        return origin[0] + math.sin(angle) * length * height, origin[1] + math.cos(angle) * length * height

    L = look.lengths
    hip = (pose["x"] * width, pose["y"] * height)
    up = math.pi + pose["torso"]
    neck = step(hip, up, L["torso"])
    j = {"hip": hip, "neck": neck, "head": step(neck, up, L["neck"] + look.head_radius)}
    for side in ("l", "r"):
        elbow = step(neck, up + pose[f"{side}_shoulder"], L["upper_arm"])
        j[f"{side}_elbow"] = elbow
        j[f"{side}_hand"] = step(elbow, up + pose[f"{side}_shoulder"] + pose[f"{side}_elbow"], L["fore_arm"])
        knee = step(hip, pose["torso"] + pose[f"{side}_hip"], L["thigh"])
        j[f"{side}_knee"] = knee
        j[f"{side}_foot"] = step(knee, pose["torso"] + pose[f"{side}_hip"] + pose[f"{side}_knee"], L["shin"])
    return j


def background(look: Appearance, height: int, width: int) -> Image.Image:
    img = Image.new("RGB", (width, height), look.background)
    draw = ImageDraw.Draw(img)
    period = max(2, int(look.texture_period * height))
    if look.texture == "stripes":
        for x in range(0, width, 2 * period):
            draw.rectangle([x, 0, x + period - 1, height], fill=look.texture_colour)
    elif look.texture == "checker":
        for y in range(0, height, period):
            for x in range((y // period % 2) * period, width, 2 * period):
                draw.rectangle([x, y, x + period - 1, y + period - 1], fill=look.texture_colour)
    elif look.texture == "gradient":
        for y in range(height):
            a = y / max(1, height - 1)
            draw.line(
                [0, y, width, y],
                fill=tuple(int((1 - a) * b + a * c) for b, c in zip(look.background, look.texture_colour)),
            )
    return img


def render(
    pose: dict[str, float], look: Appearance, size: tuple[int, int], backdrop: Image.Image
) -> tuple[Image.Image, Image.Image]:
    """(frame, label) at `size` = (H, W); `backdrop` is the appearance's background at the drawing scale."""
    height, width = size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE
    j = joints(pose, look, height, width)
    frame, label = backdrop.copy(), Image.new("RGB", (width, height))
    draw_frame, draw_label = ImageDraw.Draw(frame), ImageDraw.Draw(label)
    for (a, b), colour, thickness, label_colour in zip(LIMBS, look.limb_colours, look.limb_widths, LABEL_PALETTE):
        draw_frame.line([j[a], j[b]], fill=colour, width=max(1, int(thickness * height)))
        draw_label.line([j[a], j[b]], fill=label_colour, width=max(1, int(0.035 * height)))
    r = look.head_radius * height
    hx, hy = j["head"]
    draw_frame.ellipse([hx - r, hy - r, hx + r, hy + r], fill=look.limb_colours[1])
    out = (size[1], size[0])
    return frame.resize(out, Image.BOX), label.resize(out, Image.BOX)


def draw_video(rng: np.random.Generator, length: int, size: tuple[int, int]):
    """One video of a new look: (frame, label, clean) PIL images of `size` = (H, W), `length` of them; the scene
    has no flicker, so `clean` is the frame itself."""
    look = random_appearance(rng)
    dance = random_dance(rng, length)
    backdrop = background(look, size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE)
    for k in range(length):
        frame, label = render({name: float(v[k]) for name, v in dance.items()}, look, size, backdrop)
        yield frame, label, frame
