"""Train the cVAE: `python -m cvae_video.train [group=option ...] [key=value ...]`.

Reads like a table of contents: seed, data, model, callbacks, loggers, trainer from the config, then fit.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cvae_video import config  # noqa: F401  (registers the config resolvers)
from cvae_video.errors import user_errors


def train(cfg: DictConfig) -> dict[str, float]:
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.module, _partial_=True)(run_config=OmegaConf.to_container(cfg, resolve=True))
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    out = Path(cfg.paths.output_dir)
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
