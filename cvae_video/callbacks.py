"""Callbacks that apply the per-epoch schedules of `cvae_video.schedules` to the LightningModule."""
from __future__ import annotations

import random
from typing import Callable

import lightning as L
import numpy as np
import torch


class EpochSchedule(L.Callback):
    """At the start of every training epoch sets `module.<attribute> = schedule(epoch)` and logs it.

    The value depends on the epoch alone, so a resumed run gets exactly the values of an uninterrupted
    one; the callback keeps no state of its own.
    """

    def __init__(self, attribute: str, schedule: Callable[[int], float]):
        self.attribute, self.schedule = attribute, schedule

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = float(self.schedule(trainer.current_epoch))
        setattr(pl_module, self.attribute, value)
        pl_module.log(self.attribute, value, on_step=False, on_epoch=True)


class RNGState(L.Callback):
    """Saves the Python, NumPy and torch random states in every checkpoint and restores them on resume,
    so a resumed run draws the same teacher-forcing coins, shuffles and z as an uninterrupted one."""

    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        numpy_state = [kind, keys.tolist(), pos, has_gauss, gauss]  # plain types: loads with weights_only=True
        return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        random.setstate(state["python"])
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(state["torch"])
