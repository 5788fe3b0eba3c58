"""The default synthetic scene (`data=synthetic`): one performer in one room, seen by a fixed camera.

Shaped like the course's data (LAB4_FACTS.md, "What the frames show"): every video of every split shows
the same man (blue shirt, dark trousers, skin-coloured head and hands, dark hair and shoes) in the same
light-grey room (wall, floor, a door frame, a skirting line), so a model can learn his look and the
room's from the training set. He walks across the room, turns to face the camera, raises one or both
arms, crouches, and now and then walks up to the camera until he fills the frame. He casts a soft
shadow on the floor; the camera adds a flicker of a few grey levels (a slow global drift and per-pixel
noise) to every frame. The label is the pose as OpenPose renders it: coloured limbs on black.

A video is a script of actions drawn from `rng` (`motion.script`); `draw_video` renders it as (frame, label)
pairs; `cvae_video.data.synthetic` writes them in the LAB4 layout. With `door_rate` > 0 (the `performer_door`
scene) the room's door opens and closes at random times that neither the pose nor the previous frame tells:
there the next frame is uncertain, and only a latent can say when the door moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from cvae_video.data import motion

SUPERSAMPLE = 4  # draw at 4x the saved size, then downsample: smooth edges


@dataclass(frozen=True)
class Look:
    """The colours (RGB) of the room and of the performer."""

    wall: tuple = (197, 197, 201)
    floor_near: tuple = (160, 158, 156)
    floor_far: tuple = (178, 176, 174)
    skirting: tuple = (150, 150, 154)
    door: tuple = (186, 184, 182)
    door_frame: tuple = (168, 166, 166)
    shirt: tuple = (44, 78, 158)
    trousers: tuple = (42, 42, 52)
    shoes: tuple = (24, 24, 26)
    skin: tuple = (214, 168, 138)
    hair: tuple = (46, 34, 28)


COURSE_LOOK = Look()  # look 0: a man in a blue shirt and dark trousers in a light-grey room, as in the course


def look_of(number: int) -> Look:
    """Look 0 is the course's; any other number draws another performer in another light room (a held-out set)."""
    if number == 0:
        return COURSE_LOOK
    rng = np.random.default_rng([number, 7])
    grey = lambda base, spread: tuple(int(np.clip(base + rng.integers(-spread, spread + 1), 0, 255)) for _ in range(3))
    darker = lambda colour, gain: tuple(int(v * gain) for v in colour)
    wall = grey(int(rng.integers(175, 215)), 12)
    return Look(
        wall=wall,
        floor_near=darker(wall, 0.8),
        floor_far=darker(wall, 0.9),
        skirting=darker(wall, 0.75),
        door=darker(wall, 0.94),
        door_frame=darker(wall, 0.85),
        shirt=tuple(int(v) for v in rng.integers(20, 230, 3)),
        trousers=grey(int(rng.integers(30, 90)), 25),
        shoes=grey(30, 10),
        skin=(int(rng.integers(120, 230)), int(rng.integers(90, 180)), int(rng.integers(70, 150))),
        hair=grey(int(rng.integers(20, 120)), 15),
    )


# Where the room's lines are, as fractions of the frame height / width.
HORIZON = 0.56  # the wall meets the floor
DOOR_BOX = (0.74, 0.12, 0.86, HORIZON)  # left, top, right, bottom
SHADOW_GAIN = 0.68  # the floor under the shadow keeps this fraction of its light
DOORWAY = (62, 58, 56)  # the dark corridor behind the door, seen when it is open
FLICKER_DRIFT, FLICKER_NOISE = 0.6, 1.3  # grey levels: step of the global random walk, per-pixel noise std

# Body proportions as fractions of the standing height.
HEAD_R, NECK, TORSO, UPPER_ARM, FOREARM, THIGH, SHIN = 0.065, 0.05, 0.30, 0.17, 0.15, 0.245, 0.235
SHOULDER_HALF, HIP_HALF = 0.095, 0.06
WIDTH = {"torso_top": 0.19, "torso_bottom": 0.15, "arm": 0.06, "leg": 0.08, "hand": 0.035}

# OpenPose (COCO-18) joints and limbs and its colour per limb: the label images.
LIMBS = [
    ("neck", "r_shoulder"),
    ("neck", "l_shoulder"),
    ("r_shoulder", "r_elbow"),
    ("r_elbow", "r_wrist"),
    ("l_shoulder", "l_elbow"),
    ("l_elbow", "l_wrist"),
    ("neck", "r_hip"),
    ("r_hip", "r_knee"),
    ("r_knee", "r_ankle"),
    ("neck", "l_hip"),
    ("l_hip", "l_knee"),
    ("l_knee", "l_ankle"),
    ("neck", "nose"),
]
LIMB_COLOURS = [
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
]


def _skeleton(p: dict[str, float], height: float, width: float) -> tuple[dict[str, tuple], float]:
    """Joint positions in pixels at the drawing scale, and the standing height in pixels."""
    h = height * 0.74 / p["dist"]
    side, facing, crouch = p["side"], p["facing"], p["crouch"]
    swing = math.sin(p["phase"]) * side  # leg and arm swing show side-on only

    def step(origin, angle, length):  # angle 0 = straight down, counter-clockwise
        return origin[0] + math.sin(angle) * length * h, origin[1] + math.cos(angle) * length * h

    lean = facing * side * 0.08 + facing * crouch * 0.25 * side
    hip = (0.0, 0.0)
    neck = step(hip, math.pi + lean, TORSO)
    j = {"hip": hip, "neck": neck, "nose": step(neck, math.pi + lean, NECK + HEAD_R)}
    half_shoulder, half_hip = SHOULDER_HALF * (1 - 0.75 * side), HIP_HALF * (1 - 0.75 * side)
    for name, sign, swing_sign in (("l", -1, 1), ("r", 1, -1)):
        shoulder = (neck[0] + sign * half_shoulder * h, neck[1] + 0.02 * h)
        raised = p[f"raise_{name}"]
        arm = sign * (0.15 + 2.55 * raised) + facing * swing_sign * 0.4 * swing
        elbow = step(shoulder, arm, UPPER_ARM)
        j[f"{name}_shoulder"], j[f"{name}_elbow"] = shoulder, elbow
        j[f"{name}_wrist"] = step(elbow, arm + sign * 0.25 * raised + facing * 0.2 * side, FOREARM)
        hip_joint = (sign * half_hip * h, 0.0)
        bend = 1.1 * crouch  # a crouch bends both knees
        thigh = facing * (-swing_sign * 0.42 * swing + bend * max(side, 0.35)) + sign * 0.06 * (1 - side)
        if not side:  # facing the camera a crouch spreads the knees
            thigh += sign * 0.5 * crouch
        knee = step(hip_joint, thigh, THIGH * (1 - 0.35 * crouch * (1 - side)))
        gait_bend = 0.45 * max(0.0, math.sin(p["phase"] + swing_sign * math.pi / 2)) * side
        shin = thigh - facing * (2 * bend * max(side, 0.35) + gait_bend) - (sign * 0.9 * crouch * (1 - side))
        j[f"{name}_hip"], j[f"{name}_knee"] = hip_joint, knee
        j[f"{name}_ankle"] = step(knee, shin, SHIN * (1 - 0.35 * crouch * (1 - side)))
    # Stand on the floor: the lower ankle sits where the floor is at this distance.
    feet_y = height * (HORIZON + 0.32 / p["dist"])
    dx = p["x"] * width
    dy = feet_y - max(j["l_ankle"][1], j["r_ankle"][1]) - 0.03 * h
    return {k: (x + dx, y + dy) for k, (x, y) in j.items()}, h


def _limb(draw: ImageDraw.ImageDraw, a: tuple, b: tuple, colour: tuple, width: float) -> None:
    """A thick segment with round ends."""
    r = width / 2
    draw.line([a, b], fill=colour, width=max(1, round(width)))
    for x, y in (a, b):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def _room(look: Look, height: int, width: int, door_open: bool = False) -> Image.Image:
    """The empty room at the drawing scale, its door closed or open (the doorway dark)."""
    img = Image.new("RGB", (width, height), look.wall)
    draw = ImageDraw.Draw(img)
    top = int(HORIZON * height)
    for y in range(top, height):  # the floor darkens toward the camera
        a = (y - top) / max(1, height - top - 1)
        draw.line(
            [0, y, width, y], fill=tuple(round((1 - a) * f + a * n) for f, n in zip(look.floor_far, look.floor_near))
        )
    left, dtop, right, bottom = (v * s for v, s in zip(DOOR_BOX, (width, height, width, height)))
    draw.rectangle([left, dtop, right, bottom], fill=look.door_frame)
    inset = 0.012 * width
    draw.rectangle([left + inset, dtop + inset, right - inset, bottom], fill=DOORWAY if door_open else look.door)
    draw.rectangle([0, top - 0.025 * height, width, top], fill=look.skirting)
    return img


def _draw(p: dict[str, float], look: Look, room: Image.Image, shadowed: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(frame, label) at the drawing scale."""
    width, height = room.size
    j, h = _skeleton(p, height, width)
    frame = room.copy()
    # The shadow: an ellipse on the floor at the feet, the light from the upper left.
    feet_x = (j["l_ankle"][0] + j["r_ankle"][0]) / 2
    feet_y = max(j["l_ankle"][1], j["r_ankle"][1]) + 0.03 * h
    mask = Image.new("L", room.size)
    ImageDraw.Draw(mask).ellipse(
        [feet_x - 0.12 * h, feet_y - 0.035 * h, feet_x + 0.32 * h, feet_y + 0.03 * h], fill=255
    )
    frame.paste(shadowed, mask=mask)
    draw = ImageDraw.Draw(frame)
    facing = p["facing"]
    far, near = ("l", "r") if facing > 0 else ("r", "l")
    for side in (far, near):  # legs, then shoes
        _limb(draw, j[f"{side}_hip"], j[f"{side}_knee"], look.trousers, WIDTH["leg"] * h)
        _limb(draw, j[f"{side}_knee"], j[f"{side}_ankle"], look.trousers, WIDTH["leg"] * h * 0.9)
        ax, ay = j[f"{side}_ankle"]
        toe = ax + facing * p["side"] * 0.07 * h
        _limb(draw, (min(ax, toe), ay), (max(ax, toe), ay), look.shoes, WIDTH["leg"] * h * 0.8)
    # The torso: a trapezoid from the shoulders to the hips.
    top, bottom = (
        WIDTH["torso_top"] * h / 2 * (1 - 0.5 * p["side"]),
        WIDTH["torso_bottom"] * h / 2 * (1 - 0.5 * p["side"]),
    )
    (nx, ny), (hx, hy) = j["neck"], j["hip"]
    draw.polygon([(nx - top, ny), (nx + top, ny), (hx + bottom, hy), (hx - bottom, hy)], fill=look.shirt)
    for side in (far, near):  # arms: sleeves, then the hand
        _limb(draw, j[f"{side}_shoulder"], j[f"{side}_elbow"], look.shirt, WIDTH["arm"] * h)
        _limb(draw, j[f"{side}_elbow"], j[f"{side}_wrist"], look.skin, WIDTH["arm"] * h * 0.7)
        wx, wy = j[f"{side}_wrist"]
        r = WIDTH["hand"] * h
        draw.ellipse([wx - r, wy - r, wx + r, wy + r], fill=look.skin)
    _limb(draw, j["neck"], ((j["neck"][0] + j["nose"][0]) / 2, (j["neck"][1] + j["nose"][1]) / 2), look.skin, 0.05 * h)
    (fx, fy), r = j["nose"], HEAD_R * h
    draw.ellipse([fx - r, fy - r, fx + r, fy + r], fill=look.skin)
    draw.chord([fx - r, fy - r, fx + r, fy + r * 0.6], 180, 360, fill=look.hair)
    label = Image.new("RGB", room.size)
    draw_label = ImageDraw.Draw(label)
    stick = max(SUPERSAMPLE * 1.0, 0.035 * h)
    for (a, b), colour in zip(LIMBS, LIMB_COLOURS):
        _limb(draw_label, j[a], j[b], colour, stick)
    return frame, label


def door_states(rng: np.random.Generator, length: int, rate: float) -> np.ndarray:
    """Whether the door is open in each of `length` frames: a random first state, then a switch before each frame
    with probability `rate` (on average a switch every 1 / rate frames)."""
    switches = rng.random(length) < rate
    switches[0] = rng.random() < 0.5
    return np.cumsum(switches) % 2 == 1


def draw_video(rng: np.random.Generator, length: int, size: tuple[int, int], look: int = 0, door_rate: float = 0.0):
    """One video: (frame, label, clean) PIL images of `size` = (H, W), `length` of them, the performer of `look`
    (`look_of`) acting out a random script in the room; the frames carry the camera's flicker, `clean` is the same
    render without it (what no model can do better than: the set's ceiling). `door_rate` > 0: the door opens and
    closes at random (`door_states`, from a stream spawned off `rng`), in a video otherwise the same as without
    the door (its script and flicker)."""
    height, width = size
    colours = look_of(look)
    rooms = [_room(colours, height * SUPERSAMPLE, width * SUPERSAMPLE, door_open) for door_open in (False, True)]
    shadowed = [Image.fromarray((np.asarray(r, dtype=np.float32) * SHADOW_GAIN).astype(np.uint8)) for r in rooms]
    script = motion.script(rng, length)
    drift = np.zeros(length)  # slow global brightness (grey levels): a mean-reverting walk
    for k, step in enumerate(rng.normal(0, FLICKER_DRIFT, length)):
        drift[k] = 0.95 * drift[k - 1] + step if k else step
    # The door's own stream, spawned: `rng` draws the same script and flicker as without the door
    door = door_states(rng.spawn(1)[0], length, door_rate) if door_rate > 0 else np.zeros(length, bool)
    for k in range(length):
        pose = {name: float(v[k]) for name, v in script.items()}
        frame, label = _draw(pose, colours, rooms[int(door[k])], shadowed[int(door[k])])
        clean = frame.resize((width, height), Image.BOX)
        pixels = np.asarray(clean, dtype=np.float32)
        pixels += drift[k] + rng.normal(0, FLICKER_NOISE, pixels.shape).astype(np.float32)
        yield (
            Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)),
            label.resize((width, height), Image.BOX),
            clean,
        )
