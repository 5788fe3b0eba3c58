"""The LightningModule: the cVAE trained with manual optimization over the sequence rollout.

`beta` (KL weight; every step by default) and `tfr` (teacher-forcing ratio; each epoch) are set by `callbacks.Schedule`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from cvae_video.errors import UserError
from cvae_video.latent import diagnostics
from cvae_video.metrics import PerFrameMean, copy_first_frame, kaggle_psnr, psnr_per_frame, ssim_per_frame
from cvae_video.models.acceleration import configure

log = logging.getLogger(__name__)


class NonFiniteLossError(UserError):
    """Raised after `nan_patience` consecutive steps with a non-finite loss or gradient, at `epoch` and `step`."""

    def __init__(self, message: str, epoch: int, step: int):
        super().__init__(message)
        self.epoch, self.step = epoch, step


class CVAEModule(L.LightningModule):
    """
    net: a `models.sequence.SequenceCVAE` design (`models.template.TemplateCVAE`, `models.compositing.CompositingCVAE`).
    optimizer: a partial taking `params` (Hydra `_partial_`), e.g. torch.optim.AdamW with lr, betas, weight_decay.
    scheduler: a partial taking `optimizer`, stepped once per epoch.
    grad_clip_val: gradient-norm clipping (None: off).
    clip_per_network: clip the gradient of each network of `net` (its direct children: encoders, posterior,
        fusion, generator) to `grad_clip_val` on its own, instead of all gradients together (the lab's; why:
        docs/experiments.md, "The probes").
    teacher_forcing_per: "batch" (a coin per batch) or "epoch" (one coin per epoch, as the lab's template).
    nan_patience: consecutive skipped steps (non-finite loss or gradient) before the run stops.
    val_seed: the seed of validation's own z generator.
    dead_margin_db: a validation whose PSNR is less than this far above copy-first-frame's prints (and logs) a
        warning that the model has not learned beyond copying the first frame.
    speed: how `net` runs, never what it computes: the keyword arguments of `models.acceleration.configure`
        (time_chunk, channels_last, cuda_graphs, compile); None leaves `net` as it is.
    run_config: the composed run config as plain containers, stored in checkpoints so evaluate/predict
        rebuild the same model from the checkpoint alone.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable,
        scheduler: Callable,
        grad_clip_val: float | None = 1.0,
        clip_per_network: bool = False,
        teacher_forcing_per: str = "batch",
        nan_patience: int = 20,
        val_seed: int = 0,
        dead_margin_db: float = 2.0,
        speed: dict | None = None,
        run_config: dict | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "speed", "run_config"], logger=False)
        self.net = net if speed is None else configure(net, **speed)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.run_config = run_config
        self.beta, self.tfr = 1.0, 0.0  # set each epoch by the schedule callbacks
        self.skipped_steps = 0  # consecutive steps skipped for a non-finite loss or gradient
        self.epoch_teacher_forcing = False
        self.val_psnr_curve = PerFrameMean()
        self.copy_first_psnr_curve = PerFrameMean()  # the baseline a model must beat, on the same frames
        self.val_ssim_curve = PerFrameMean()
        self.val_kaggle = PerFrameMean()  # one value per sequence: the course's Kaggle score
        self.val_moments: list[tuple] = []  # each validation sequence's posterior and prior moments (latent.py)
        self.last_validation: dict = {}  # epoch, step, per-frame PSNR, latent; with `val_example`: callbacks' to record

    def setup(self, stage: str) -> None:
        # After the DataModule's setup; a resumed run's checkpoint, restored after this, holds the same room.
        if stage == "fit" and self.trainer.datamodule is not None:
            self.net.set_room(self.trainer.datamodule.static_background())
        # Before Lightning's own check, which ends in a traceback.
        interval = self.trainer.val_check_interval
        if stage == "fit" and isinstance(interval, int):
            batches = len(self.trainer.datamodule.train_dataloader())
            limit = self.trainer.limit_train_batches
            batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
            if interval > batches:
                raise UserError(
                    f"trainer.val_check_interval={interval} is more training batches than an epoch has "
                    f"({batches}): give at most {batches}, or a fraction of an epoch (0.25: 4 times "
                    f"an epoch)"
                )

    def on_fit_start(self) -> None:
        if self.trainer.precision == "16-mixed":  # on CPU Lightning turns it into bf16-mixed
            raise UserError(
                "trainer.precision=16-mixed is not supported: fp16's loss scaler lowers its scale only "
                "in optimizer steps, which the NaN guard skips; use bf16-mixed (trainer=gpu) or 32-true"
            )
        # After the DataModule's setup, so a bad data set fails before any logger writes a file.
        for logger in self.loggers:
            logger.log_hyperparams(self.run_config or {})

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": self.scheduler_factory(optimizer=optimizer),
                "interval": "epoch",
                "name": "schedule/lr",
            },
        }

    def rollout(
        self, first_frame: torch.Tensor, poses: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Inference: (B, 1, 3, H, W) first frame and (B, T, 3, H, W) poses -> (B, T, 3, H, W) video, z ~ N(0, I)
        (drawn from `generator` when given, else from the global generator of the device).

        Never under autocast, also inside a mixed-precision Trainer's validation: evaluate and predict run the
        float32 weights without it, so validation reports their numbers, and no bf16 rounding compounds over
        630 frames. It is also faster: at batch 1 to 5 a rollout is launch-bound and autocast adds a cast of
        every weight at every step (docs/experiments.md, "Speed").
        """
        b, t, _, h, w = poses.shape
        noise = self.net.standard_noise(b, t - 1, h, w, poses.device, generator)
        with torch.autocast(first_frame.device.type, enabled=False):
            preds, _ = self.net.unroll(poses, first_frame, use_posterior=False, teacher_forcing=False, noise=noise)
        # A network without an output sigmoid (model=template) feeds its raw outputs back, as the template does;
        # the video it returns is clamped to the [0, 1] that scores, pictures and the submission need.
        return torch.cat([first_frame, preds.clamp(0, 1)], 1)

    def weights_cast_once(self) -> contextlib.AbstractContextManager:
        """Under mixed precision, cast each weight to the low precision once per training step.

        Lightning's autocast runs with its cast cache off, so every convolution of every time step of the
        unroll casts its weights again, forward and backward (the kernel counts: docs/experiments.md, "Speed").
        The weights do not change within the unroll. Leaving this block turns the
        cache off again, so the optimizer step (kept outside it) and what follows never read a stale cast, and
        Lightning's own autocast empties the cache when it exits at the end of the step.
        """
        device = self.device.type
        if not torch.is_autocast_enabled(device):
            return contextlib.nullcontext()
        return torch.autocast(device, dtype=torch.get_autocast_dtype(device), cache_enabled=True)

    def on_train_epoch_start(self) -> None:
        # Runs after the callbacks' hook of the same name, so `self.tfr` is this epoch's value.
        self.epoch_teacher_forcing = bool(torch.rand(()) < self.tfr)

    def training_step(self, batch, batch_idx):
        frames, poses = batch  # (B, T, 3, H, W) each
        if self.hparams.teacher_forcing_per == "epoch":
            teacher_forcing = self.epoch_teacher_forcing
        else:
            teacher_forcing = bool(torch.rand(()) < self.tfr)
        with self.weights_cast_once():
            loss, mse, kl = self.net.training_loss(frames, poses, self.beta, teacher_forcing)

        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)  # also for a non-finite loss: under DDP every rank must join the all-reduce
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.parameters() if p.grad is not None])
        # The step's one host read, after the backward pass. A non-finite loss gives non-finite gradients, and the
        # gradients are the all-reduced ones under DDP, so every rank skips or steps alike.
        finite = bool(torch.isfinite(grad_norm))
        if finite:
            if self.hparams.grad_clip_val and self.hparams.clip_per_network:
                for network in self.net.children():
                    torch.nn.utils.clip_grad_norm_(network.parameters(), self.hparams.grad_clip_val)
            elif self.hparams.grad_clip_val:
                self.clip_gradients(
                    optimizer, gradient_clip_val=self.hparams.grad_clip_val, gradient_clip_algorithm="norm"
                )
            optimizer.step()
            self.skipped_steps = 0
            self.log("train/grad_norm", grad_norm, on_step=True, on_epoch=False)
        else:
            optimizer.zero_grad()
            self.skipped_steps += 1
            if self.skipped_steps >= self.hparams.nan_patience:
                raise NonFiniteLossError(
                    f"{self.skipped_steps} consecutive steps with a non-finite loss or gradient "
                    f"(epoch {self.current_epoch}, step {self.global_step}); try a lower lr.base "
                    f"(now {self.optimizers().param_groups[0]['lr']:g})",
                    self.current_epoch,
                    self.global_step,
                )
        self.log("train/skipped", float(not finite), on_step=False, on_epoch=True, reduce_fx="sum")
        batch_size = frames.shape[0]
        self.log_dict(
            {"train/loss": loss, "train/mse": mse, "train/kl": kl},
            on_step=True,
            on_epoch=True,
            prog_bar=False,
            batch_size=batch_size,
        )
        self.log("train/teacher_forcing", float(teacher_forcing), on_step=False, on_epoch=True, batch_size=batch_size)

    def on_train_epoch_end(self) -> None:
        self.lr_schedulers().step()

    def on_validation_epoch_start(self) -> None:
        # Validation draws its z from its own generator, seeded alike every time: every validation of a run
        # scores the same z, and how often it validates changes nothing that training draws.
        self.val_generator = torch.Generator().manual_seed(self.hparams.val_seed)

    def validation_step(self, batch, batch_idx):
        frames, poses = batch  # (B, 630, 3, H, W)
        video = self.rollout(frames[:, :1], poses, self.val_generator)
        if batch_idx == 0:
            self.val_example = {"truth": frames[0], "prediction": video[0], "pose": poses[0]}  # each (T, 3, H, W)
        self.val_psnr_curve.update(psnr_per_frame(video[:, 1:], frames[:, 1:]))  # (B, 629)
        self.copy_first_psnr_curve.update(psnr_per_frame(copy_first_frame(frames), frames[:, 1:]))
        self.val_ssim_curve.update(ssim_per_frame(video[:, 1:], frames[:, 1:]))
        self.val_kaggle.update(kaggle_psnr(video, frames)[:, None])  # (B, 1)
        self.val_moments.append(tuple(m.cpu() for m in self.net.latent_moments(frames, poses)))  # (B, T-1, N, h, w)

    def on_validation_epoch_end(self) -> None:
        curve, copy_first = self.val_psnr_curve.compute(), self.copy_first_psnr_curve.compute()  # (T - 1,) each
        self.log("val/psnr", curve.mean(), prog_bar=True)
        self.log("val/psnr_over_copy_first", curve.mean() - copy_first.mean())
        self.log("val/ssim", self.val_ssim_curve.compute().mean())
        self.log("val/kaggle_psnr", self.val_kaggle.compute().mean())
        for metric in (self.val_psnr_curve, self.copy_first_psnr_curve, self.val_ssim_curve, self.val_kaggle):
            metric.reset()
        # What z carries, over this process's validation sequences (under DDP: its share)
        latent = diagnostics(*(torch.cat(m) for m in zip(*self.val_moments)))
        self.val_moments = []
        self.log_dict({"val/kl": latent["kl"], "val/active_units": float(latent["active_units"])}, sync_dist=True)
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        gain = (curve.mean() - copy_first.mean()).item()
        if gain < self.hparams.dead_margin_db:
            log.warning(
                f"epoch {self.current_epoch}, step {self.global_step}: val/psnr {curve.mean():.2f} dB is "
                f"{gain:+.2f} dB from copy-first-frame ({copy_first.mean():.2f} dB): the model has not "
                f"learned more than copying the first frame (margin {self.hparams.dead_margin_db:g} dB)"
            )
        self.last_validation = {
            "epoch": self.current_epoch,
            "step": self.global_step,
            "psnr": curve.tolist(),
            "latent": latent,
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["run_config"] = self.run_config
