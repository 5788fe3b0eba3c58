"""Config helpers: the resolvers the configs use (`${project_root:}`, `${sweep_group:}`, `${hydra_record:}`, the W&B
name and tags) and the check of user-typed values."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cvae_video.errors import UserError
from cvae_video.models.sequence import SequenceCVAE

TAG_LIMIT = 64  # W&B refuses longer tags


def project_root() -> Path:
    """Where `outputs/` and `data/` go: `$CVAE_VIDEO_ROOT` if set; else the source checkout the package runs
    from (the folder above it holds pyproject.toml); else, for an installed package, the current folder."""
    if os.environ.get("CVAE_VIDEO_ROOT"):
        return Path(os.environ["CVAE_VIDEO_ROOT"]).resolve()
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


OmegaConf.register_new_resolver("project_root", lambda: str(project_root()), replace=True)


def sweep_group(task_name: str) -> str | None:
    """In a sweep (-m): `<task_name>/<the sweep folder's name>`, shared by its runs (their W&B group); else None."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return f"{task_name}/{Path(hydra_cfg.runtime.output_dir).parent.name}"


OmegaConf.register_new_resolver("sweep_group", sweep_group, replace=True)


def command_line() -> list[str]:
    """The overrides the run was started with (Hydra's `overrides.task`); none for a config composed in code."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


OmegaConf.register_new_resolver("command_line", command_line, replace=True)


def hydra_record(ckpt_path: str | None) -> str:
    """Hydra's record of a run (`hydra.output_subdir`): `.hydra`; a resumed run's `.hydra/resume_<date_time>`, so
    the first run's record of its overrides stays."""
    return ".hydra" if ckpt_path is None else f".hydra/resume_{datetime.now():%Y-%m-%d_%H-%M-%S}"


OmegaConf.register_new_resolver("hydra_record", hydra_record, replace=True, use_cache=True)  # one time stamp a run


def short_overrides(overrides: list[str]) -> list[str]:
    """The overrides that fit a W&B tag: at most 64 characters; no paths, ckpt_path, logger or tags."""
    skip = ("paths.", "hydra.", "ckpt_path=", "data.root=", "logger=", "tags=")
    return [o for o in overrides if len(o) <= TAG_LIMIT and not o.lstrip("+~").startswith(skip)]


def wandb_tags(overrides: list[str], tags: list[str]) -> list[str]:
    """A run's W&B tags: its short overrides and the user's `tags`, each cut to W&B's 64 characters."""
    return list(dict.fromkeys(t[:TAG_LIMIT] for t in [*short_overrides(overrides), *map(str, tags)] if t))


def run_name(overrides: list[str], output_dir: str) -> str:
    """A run's W&B name: its short overrides, else its run folder's name; in a sweep led by the run's number."""
    name = " ".join(short_overrides(overrides)) or Path(output_dir).name
    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    return f"{HydraConfig.get().job.num}: {name}" if in_sweep else name


OmegaConf.register_new_resolver("wandb_tags", wandb_tags, replace=True)
OmegaConf.register_new_resolver("run_name", run_name, replace=True)
OmegaConf.register_new_resolver(
    "wandb_offline", lambda: os.environ.get("WANDB_MODE", "offline") != "online", replace=True
)

# key -> (test, allowed range in words). A key absent from the composed config (another option of
# its group is in use) is not checked.
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr.base": (lambda v: v > 0, "> 0"),
    "tfr.start": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "tfr.value": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "tfr.tfr_sde": (lambda v: v >= 0, ">= 0"),
    "tfr.tfr_d_step": (lambda v: v >= 0, ">= 0"),
    "kl.ratio": (lambda v: v > 0, "> 0"),
    "kl.cycle": (lambda v: v > 0, "> 0"),
    "kl.value": (lambda v: v >= 0, ">= 0"),
    "data.batch_size": (lambda v: v >= 1, ">= 1"),
    "data.val_batch_size": (lambda v: v >= 1, ">= 1"),
    "data.frame_H": (lambda v: v > 0, "> 0"),
    "data.frame_W": (lambda v: v > 0, "> 0"),
    "data.train_vi_len": (lambda v: v >= 2, ">= 2 (a first frame and one to predict)"),
    "data.val_vi_len": (lambda v: v >= 2, ">= 2 (a first frame and one to predict)"),
    "data.partial": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "data.train_frame_step": (lambda v: v >= 1, ">= 1 (1: consecutive frames)"),
    "data.train_first_gap": (lambda v: v >= 0, ">= 0 (0: the first frame is a step like the others)"),
    "eval.num_samples": (lambda v: v >= 1, ">= 1"),
    "trainer.max_epochs": (lambda v: v >= 1, ">= 1 (the KL, teacher-forcing and lr schedules are laid over them)"),
    "module.nan_patience": (lambda v: v >= 1, ">= 1"),
    "module.grad_clip_val": (lambda v: v is None or v > 0, "> 0, or null for no clipping"),
}


# key -> its allowed values (keys set in a yaml file and used inside a network, where Hydra would wrap the error)
CHOICES: dict[str, tuple[str, ...]] = {
    "model.prior": SequenceCVAE.PRIORS,
    "module.teacher_forcing_per": ("batch", "epoch"),
}


def check_ranges(cfg: DictConfig) -> None:
    """Raise `UserError` naming the first key whose value is out of its allowed range or choices (every entry
    point's config: a key it lacks is not checked)."""
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key, default=allowed[0])
        if value not in allowed:
            raise UserError(f"{key}={value} is not one of {', '.join(allowed)}")
    for key, (ok, allowed) in RANGES.items():
        value = OmegaConf.select(cfg, key, default="__absent__")
        if isinstance(value, str) and value == "__absent__":
            continue
        try:
            valid = ok(value)
        except TypeError:
            valid = False
        if not valid:
            raise UserError(f"{key}={value} is out of range: expected {allowed}")
