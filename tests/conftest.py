"""Shared fixtures: a tiny synthetic data set on disk and Hydra composition of the real configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from cvae_video import config  # noqa: F401  (registers the config resolvers)
from cvae_video.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(Path(__file__).resolve().parents[1] / "cvae_video" / "conf")
TINY = dict(seed=0, train_videos=2, train_video_len=24, val_videos=1, test_videos=2, sequence_len=12)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A synthetic data set in the LAB4 layout: 2 training videos of 24 frames, sequences of 12 frames."""
    return generate(tmp_path_factory.mktemp("data") / "tiny", **TINY)


def tiny_overrides(root: Path, out: Path) -> list[str]:
    """Overrides that make any config run in seconds on the tiny set, writing under `out`."""
    return [
        f"data.root={root}",
        f"paths.output_dir={out}",
        "model=small",
        "data.train_vi_len=6",
        "data.val_vi_len=12",
        "data.batch_size=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=1.0",
    ]


def cli(module: str, *args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m cvae_video.<module> ARGS` as a user types it (WANDB_MODE unset, Hydra's short errors)."""
    environment = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"} | {"HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", f"cvae_video.{module}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment | (env or {}),
    )


def compose_config(name: str, overrides: list[str]):
    """The composed `name` config (real Hydra composition, no Hydra app: `${hydra:...}` stays unresolved)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            return compose(config_name=name, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def tiny_run(tiny_root, tmp_path_factory) -> Path:
    """The run dir of 2 epochs of training on the tiny set: checkpoints/, csv/, val_psnr_per_frame.jsonl."""
    from cvae_video.train import train  # Lightning and torch only for the tests that need a run

    out = tmp_path_factory.mktemp("run")
    train(compose_config("train", tiny_overrides(tiny_root, out) + ["trainer.max_epochs=2"]))
    return out


@pytest.fixture
def compose_train():
    """compose_train(overrides) -> the composed `train` config (real Hydra composition)."""

    def _compose(overrides: list[str]):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # ${hydra:...} resolves, as in a run of the CLI
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None  # later tests (and user_errors) must not see this test's Hydra config
