"""Callbacks: the schedules of `cvae_video.schedules` applied to the LightningModule, the RNG state and training
minutes kept in checkpoints, and each validation's records written to the run dir and W&B."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger

from cvae_video.video_io import write_gif


class Schedule(L.Callback):
    """Sets `module.<attribute> = schedule(epoch)` and logs it as `schedule/<attribute>`.

    `per_step=False`: once, at the start of every training epoch, as the lab. `per_step=True`: before every
    training batch, at the fractional epoch `epoch + batch / batches_per_epoch`, so the value moves between
    one epoch's value and the next instead of jumping (Fu et al. anneal beta per iteration). The value
    depends on the epoch and batch alone, so a resumed run gets exactly the values of an uninterrupted
    one; the callback keeps no state of its own.
    """

    def __init__(self, attribute: str, schedule: Callable[[float], float], per_step: bool = False):
        self.attribute, self.schedule, self.per_step = attribute, schedule, per_step

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.per_step:
            self._apply(pl_module, trainer.current_epoch, on_step=False)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.per_step:
            self._apply(pl_module, trainer.current_epoch + batch_idx / trainer.num_training_batches, on_step=True)

    def _apply(self, pl_module: L.LightningModule, epoch: float, on_step: bool) -> None:
        value = float(self.schedule(epoch))
        setattr(pl_module, self.attribute, value)
        pl_module.log(f"schedule/{self.attribute}", value, on_step=on_step, on_epoch=not on_step)


class RNGState(L.Callback):
    """Saves the Python, NumPy, torch CPU and every CUDA device's random states in every checkpoint and
    restores them on resume, so a resumed run draws the same teacher-forcing coins, shuffles and z as an
    uninterrupted one (on a GPU, z comes from the CUDA generator)."""

    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        numpy_state = [kind, keys.tolist(), pos, has_gauss, gauss]  # plain types: loads with weights_only=True
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state: dict) -> None:
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        random.setstate(state["python"])
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(state["torch"])
        # absent in older checkpoints; a machine with fewer (or no) CUDA devices restores those it has
        for device, cuda_state in enumerate(state.get("cuda", [])[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, device)


class TrainingMinutes(L.Callback):
    """Logs `time/train_minutes`, the wall-clock minutes spent in training epochs so far (validation not
    counted), at the end of each validation: the x axis of the learning curve against time.

    The count is kept in checkpoints, so a resumed run goes on from where it stopped.
    """

    def __init__(self):
        self.minutes, self._epoch_start = 0.0, None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._add_epoch_time()

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._add_epoch_time()  # validation runs inside the training epoch, before its end hook

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("time/train_minutes", self.minutes)
        self._epoch_start = time.perf_counter()  # training goes on (to the epoch's end, or mid-epoch)

    def _add_epoch_time(self) -> None:
        if self._epoch_start is not None:
            self.minutes += (time.perf_counter() - self._epoch_start) / 60
            self._epoch_start = None

    def state_dict(self) -> dict:
        return {"minutes": self.minutes}

    def load_state_dict(self, state: dict) -> None:
        self.minutes = state["minutes"]


class ValidationRecords(L.Callback):
    """After each validation (not the sanity check; rank 0 alone): the module's per-frame PSNR curve appended to
    `<run dir>/val_psnr_per_frame.jsonl` and, with a W&B logger, logged as a table W&B can plot; the rollout of
    the first validation sequence as a small GIF (every `GIF_FRAME_STEP`-th frame, twice the size) at most
    `wandb_gifs` times a run, at evenly spaced points of its steps (the first validation is the first point)."""

    GIF_FRAME_STEP = 3

    def __init__(self, wandb_gifs: int = 4):
        self.wandb_gifs, self.gifs_logged = wandb_gifs, 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        record = pl_module.last_validation  # {epoch, step, psnr: the curve over predicted frames}
        with open(Path(trainer.default_root_dir) / "val_psnr_per_frame.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                self.log_to_wandb(trainer, logger, record, pl_module.val_example)

    def log_to_wandb(self, trainer: L.Trainer, logger: WandbLogger, record: dict, example: dict) -> None:
        step = record["step"]
        rows = [[t + 1, v] for t, v in enumerate(record["psnr"])]
        logger.log_table("val/psnr_per_frame", columns=["frame", "psnr"], data=rows, step=step)
        total = min(trainer.estimated_stepping_batches, 1e12)  # inf: a run with no set end
        if self.gifs_logged < self.wandb_gifs and step >= self.gifs_logged * total / self.wandb_gifs:
            gif = Path(trainer.default_root_dir) / "val_rollout.gif"
            frames = {k: v[:: self.GIF_FRAME_STEP].cpu() for k, v in example.items()}  # each (T / 3, 3, H, W)
            write_gif(gif, frames, fps=25 / self.GIF_FRAME_STEP, scale=2)
            logger.log_video("val/rollout", [str(gif)], step=step, format=["gif"])
            self.gifs_logged += 1
