"""Train the cVAE: `python -m cvae_video.train [group=option ...] [key=value ...]`.

Reads like a table of contents: seed, data, model, callbacks, loggers, trainer from the config, then fit.
"""

from __future__ import annotations

from cvae_video.cli import TRAINING_GROUPS, EntryPoint, check_command_line

ENTRY = EntryPoint(
    "cvae_video.train",
    "train",
    "Train the conditional VAE on a data set in the course's LAB4 layout (default: a synthetic one, generated on\n"
    "first use), validating on 630-frame rollouts. Writes checkpoints/, csv/version_*/metrics.csv and\n"
    "val_psnr_per_frame.jsonl to its run dir (outputs/train/runs/<date_time>/, or hydra.run.dir=...).",
    ("data", *TRAINING_GROUPS),
    (
        "data=lab4 data.root=/path/to/LAB4_Dataset trainer=gpu",
        "kl=monotonic optim=adamw logger=wandb",
        "-m kl=none,monotonic,cyclical",
        "ckpt_path=last hydra.run.dir=outputs/train/runs/<date_time>",
        "debug=fdr",
    ),
)
if __name__ == "__main__":  # before torch and Lightning load: --help and a bad command line answer in a second
    check_command_line(ENTRY)

import json
import logging
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from cvae_video.atomic import atomic_open
from cvae_video.checkpoints import check_matches, read_checkpoint
from cvae_video.config import check_ranges
from cvae_video.errors import UserError, user_errors
from cvae_video.module import NonFiniteLossError
from cvae_video.resume import checkpoint_path, resumed_config

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    if OmegaConf.select(cfg, "data.from_checkpoint"):
        raise UserError(
            "data=checkpoint is evaluate's and predict's (the data a checkpoint was trained on); name a "
            "data set to train on: data=synthetic, or data=lab4 data.root=/path/to/LAB4_Dataset"
        )
    check_ranges(cfg)
    log.info(f"the composed config:\n{OmegaConf.to_yaml(cfg)}")  # the run's train.log
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.paths.output_dir)
    ckpt_path = None if cfg.ckpt_path is None else checkpoint_path(cfg.ckpt_path, out)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    if not datamodule.generates_root():  # a missing folder fails now, before the model is built
        datamodule.check_root()
    print(f"data: {datamodule.root}" + (" (to be generated)" if datamodule.generates_root() else ""))
    module = instantiate(cfg.module, _partial_=True)(run_config=OmegaConf.to_container(cfg, resolve=True))
    if ckpt_path is not None:
        check_matches(module, read_checkpoint(ckpt_path), ckpt_path)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    if not cfg.trainer.enable_progress_bar:  # trainer.enable_progress_bar=false: no bar, also not the config's
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    try:
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as err:  # a Trainer option Lightning refuses: its message, on one line
        raise UserError(f"trainer: {' '.join(str(err.__cause__ or err).split())}") from None
    wandb_dirs = []
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:  # a W&B run left open would swallow the next run of a sweep (runs share one process)
        if any(isinstance(logger, WandbLogger) for logger in loggers):
            import wandb  # only with logger=wandb: importing it costs seconds

            if wandb.run is not None:
                wandb_dirs.append(Path(wandb.run.dir).parent)  # <run dir>/wandb/offline-run-<time>-<id>
                wandb.finish()

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics.update(epochs=trainer.current_epoch, steps=trainer.global_step, data_root=str(datamodule.root.resolve()))
    print(
        f"val/psnr {metrics.get('val/psnr', float('nan')):.2f} dB after {trainer.current_epoch} epochs, "
        f"{trainer.global_step} steps"
    )
    print_outputs(out, loggers, wandb_dirs)
    return metrics


def print_outputs(out: Path, loggers: list, wandb_dirs: list[Path]) -> None:
    """The paths a run wrote (those that exist: `debug=fdr` writes no checkpoint), and how to upload a W&B run."""
    written = [("checkpoints", out / "checkpoints"), ("per-frame validation PSNR", out / "val_psnr_per_frame.jsonl")]
    written += [("metrics", Path(lg.log_dir) / "metrics.csv") for lg in loggers if isinstance(lg, CSVLogger)]
    for what, path in written:
        if path.exists():
            print(f"{what}: {path}")
    for run in wandb_dirs:
        print(f"W&B: {run}" + (f"\n  upload it: wandb sync {run}" if run.name.startswith("offline-run") else ""))


@rank_zero_only
def write_status(out: Path, status: str, started: float, **details) -> None:
    """`run_status.json`: how a run ended (completed, diverged or failed), its wall time, and details (under DDP
    written by rank 0 alone)."""
    record = {"status": status, "wall_seconds": round(time.perf_counter() - started, 1), **details}
    with atomic_open(out / "run_status.json") as f:
        json.dump(record, f, indent=1)


@hydra.main(version_base=None, config_path="conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> float:
    """Train; in a sweep (-m), a run that diverges or fails is recorded in its run_status.json and the sweep
    goes on (its objective is NaN); a single run raises."""
    started, out = time.perf_counter(), Path(cfg.paths.output_dir)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        metrics = train(resumed_config(cfg) if cfg.ckpt_path is not None else cfg)
    except NonFiniteLossError as err:
        if not in_sweep:
            raise
        write_status(out, "diverged", started, epoch=err.epoch, step=err.step, error=str(err))
        log.error(f"diverged at epoch {err.epoch}, step {err.step}: {err}")
        return float("nan")
    except Exception as err:  # noqa: BLE001  one run's error must not end the sweep
        if not in_sweep:
            raise
        write_status(out, "failed", started, error=f"{type(err).__name__}: {' '.join(str(err).split())}")
        log.error(f"failed: {type(err).__name__}: {err}")
        return float("nan")
    write_status(
        out,
        "completed",
        started,
        epochs=metrics["epochs"],
        steps=metrics["steps"],
        val_psnr=metrics.get("val/psnr"),
        data_root=metrics["data_root"],
    )
    return metrics.get("val/psnr", float("nan"))


if __name__ == "__main__":
    main()
