"""The performer's motion: a script of actions drawn from `rng`; every pose parameter moves toward its action's
target at a bounded rate and is then smoothed, so motion is continuous (`performer.draw_video` renders it)."""

from __future__ import annotations

import math

import numpy as np

# Actions and how often the script picks each.
ACTIONS = {"walk": 0.38, "arms": 0.2, "crouch": 0.14, "idle": 0.18, "approach": 0.1}
RATES = {"x": 0.0045, "dist": 0.012, "side": 0.06, "raise_l": 0.05, "raise_r": 0.05, "crouch": 0.045}


def script(rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    """Pose parameters per frame, each (length,):

    x      hip position, fraction of the width      dist   distance to the camera (1 = mid-room)
    side   0 = facing the camera, 1 = side-on       facing +1 walking right, -1 left
    raise_l, raise_r  arms, 0 = down, 1 = up        crouch 0 = standing, 1 = deep crouch
    phase  gait phase (radians; advances while walking)
    """
    state = {
        "x": rng.uniform(0.2, 0.8),
        "dist": rng.uniform(0.95, 1.5),
        "side": 0.0,
        "facing": 1.0,
        "raise_l": 0.0,
        "raise_r": 0.0,
        "crouch": 0.0,
        "phase": 0.0,
    }
    out = {k: np.empty(length) for k in state}
    names, probs = list(ACTIONS), np.array(list(ACTIONS.values()))
    t = 0
    while t < length:
        action = rng.choice(names, p=probs / probs.sum())
        target = {"raise_l": 0.0, "raise_r": 0.0, "crouch": 0.0}
        walking = action in ("walk", "approach")
        if action == "walk":
            x = state["x"]
            target.update(
                x=float(np.clip(x + rng.choice([-1, 1]) * rng.uniform(0.25, 0.6), 0.1, 0.9)),
                dist=rng.uniform(0.9, 1.6),
                side=1.0,
            )
            duration = int(abs(target["x"] - x) / RATES["x"] * state["dist"]) + 10
        elif action == "approach":  # up to the camera, a pause there, and back
            target.update(x=rng.uniform(0.35, 0.65), dist=rng.uniform(0.42, 0.55), side=0.2)
            duration = int(rng.integers(110, 170))
        elif action == "arms":
            both = rng.random() < 0.5
            left = both or rng.random() < 0.5
            target.update(
                raise_l=float(left) * rng.uniform(0.6, 1.0),
                raise_r=float(both or not left) * rng.uniform(0.6, 1.0),
                side=0.0,
            )
            duration = int(rng.integers(40, 90))
        elif action == "crouch":
            target.update(crouch=rng.uniform(0.55, 1.0), side=0.0)
            duration = int(rng.integers(40, 90))
        else:
            target.update(side=rng.uniform(0.0, 0.5))
            duration = int(rng.integers(20, 60))
        for k in range(min(duration, length - t)):
            returning = action == "approach" and k > duration * 0.6
            for name, goal in target.items():
                if returning and name == "dist":
                    goal = 1.2
                move = np.clip(goal - state[name], -RATES[name], RATES[name])
                if name == "x":
                    move /= state["dist"]  # nearer, the same walk crosses more of the frame
                state[name] += move
            if walking:
                dx = target["x"] - state["x"]
                if abs(dx) > 0.01:
                    state["facing"] = math.copysign(1.0, dx)
                state["phase"] += 0.26
            else:  # the legs come to rest
                state["phase"] += (round(state["phase"] / math.pi) * math.pi - state["phase"]) * 0.2
            for name in out:
                out[name][t] = state[name]
            t += 1
    kernel = np.ones(5) / 5
    for name in ("x", "dist", "side", "raise_l", "raise_r", "crouch"):
        padded = np.pad(out[name], 2, mode="edge")
        out[name] = np.convolve(padded, kernel, mode="valid")
    return out
