"""Train the cVAE: `python -m cvae_video.train [group=option ...] [key=value ...]`.

Reads like a table of contents: seed, data, model, callbacks, loggers, trainer from the config, then fit.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

from cvae_video.checkpoints import check_matches, read_checkpoint
from cvae_video.config import check_ranges
from cvae_video.errors import UserError, user_errors


def resume_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """`last` means this run dir's checkpoints/last.ckpt, which must exist (Lightning would start afresh)."""
    if ckpt_path != "last":
        return ckpt_path
    last = output_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise UserError(f"ckpt_path=last: no {last}; resume with hydra.run.dir=<the run's dir> ckpt_path=last, "
                        f"or give ckpt_path=<path to a .ckpt>")
    return str(last)


def train(cfg: DictConfig) -> dict[str, float]:
    check_ranges(cfg)
    out = Path(cfg.paths.output_dir)
    ckpt_path = resume_path(cfg.ckpt_path, out)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.module, _partial_=True)(run_config=OmegaConf.to_container(cfg, resolve=True))
    if ckpt_path is not None:
        check_matches(module, read_checkpoint(ckpt_path), ckpt_path)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    if not cfg.trainer.enable_progress_bar:   # trainer.enable_progress_bar=false: no bar, also not the config's
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    try:
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as err:   # a Trainer option Lightning refuses: its message, on one line
        raise UserError(f"trainer: {' '.join(str(err.__cause__ or err).split())}") from None
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    print(f"val/psnr {metrics.get('val/psnr', float('nan')):.2f} dB after {trainer.current_epoch} epochs, "
          f"{trainer.global_step} steps")
    print(f"checkpoints: {out / 'checkpoints'}")
    for logger in loggers:
        print(f"logs ({type(logger).__name__}): {logger.log_dir if hasattr(logger, 'log_dir') else logger.save_dir}")
    print(f"per-frame validation PSNR: {out / 'val_psnr_per_frame.jsonl'}")
    return metrics


@hydra.main(version_base=None, config_path="../conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> float:
    return train(cfg).get("val/psnr", float("nan"))


if __name__ == "__main__":
    main()
