"""Callbacks that apply the per-epoch schedules of `cvae_video.schedules` to the LightningModule."""
from __future__ import annotations

from typing import Callable

import lightning as L


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
