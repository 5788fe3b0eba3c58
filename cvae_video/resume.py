"""Resuming a run from its checkpoint: the run's own overrides come back; what would change its model or data is
refused.

A checkpoint holds the run's config, its `overrides` among them (the command line it was started with). Resuming
composes the training config again from those overrides, then the resume command's own on top (a later
`trainer.max_epochs=100` wins), so the user repeats nothing. An override that changes the network or the data it
reads (`model.*`, and `data.root`, `data.frame_H`, `data.frame_W`, `data.synthetic`) is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cvae_video.checkpoints import read_checkpoint
from cvae_video.errors import UserError

DATA_IDENTITY = ("root", "frame_H", "frame_W", "synthetic")  # the keys of `data` that say which frames are read


def checkpoint_path(ckpt_path: str, output_dir: Path) -> str:
    """`last` means this run dir's checkpoints/last.ckpt, which must exist (Lightning would start afresh)."""
    if ckpt_path != "last":
        return ckpt_path
    last = output_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise UserError(
            f"ckpt_path=last: no {last}; resume with hydra.run.dir=<the run's dir> ckpt_path=last, "
            f"or give ckpt_path=<path to a .ckpt>"
        )
    return str(last)


def override_key(override: str) -> str:
    """`+a.b=1` -> `a.b`; `model=small` -> `model`."""
    return override.split("=", 1)[0].lstrip("+~")


def resumed_config(cfg: DictConfig) -> DictConfig:
    """The config of the run `cfg.ckpt_path` (a path, or `last`) resumes: composed from the checkpoint's stored
    overrides and then this command's; `ckpt_path` resolved to the file. `UserError` if it would change the
    model or the data of the run."""
    path = checkpoint_path(cfg.ckpt_path, Path(cfg.paths.output_dir))
    stored = read_checkpoint(path).get("run_config") or {}
    if "overrides" not in stored:  # a checkpoint of an older version: the command line is taken as it is
        return OmegaConf.merge(cfg, {"ckpt_path": path})
    typed = [o for o in HydraConfig.get().overrides.task if override_key(o) != "ckpt_path"]
    typed_keys = {override_key(o) for o in typed}
    overrides = [o for o in stored["overrides"] if override_key(o) not in typed_keys | {"ckpt_path"}] + typed
    resumed = compose(config_name=HydraConfig.get().job.config_name, overrides=overrides)
    resumed.ckpt_path, resumed.overrides = path, overrides
    refuse_changes(OmegaConf.to_container(resumed, resolve=True), stored, path)
    return resumed


def refuse_changes(new: dict, stored: dict, path: str) -> None:
    """`UserError` naming the first key of the model or the data whose value differs from the stored run's."""
    for key in ("model", *(f"data.{k}" for k in DATA_IDENTITY)):
        section, _, sub = key.partition(".")
        now, then = new.get(section, {}), stored.get(section, {})
        difference = first_difference(now.get(sub) if sub else now, then.get(sub) if sub else then, key)
        if difference:
            key, then, now = difference
            raise UserError(
                f"resuming {path}: {key} would change from the run's {then} to {now}; a resumed run keeps "
                f"its model and data (drop that override, or start a new run without ckpt_path)"
            )


def first_difference(new: Any, old: Any, key: str) -> tuple[str, Any, Any] | None:
    """(dotted key, old value, new value) of the first leaf where two nested dicts differ, else None."""
    if isinstance(new, dict) and isinstance(old, dict):
        for k in sorted(new.keys() | old.keys()):
            difference = first_difference(new.get(k), old.get(k), f"{key}.{k}")
            if difference:
                return difference
        return None
    return None if new == old else (key, old, new)
