"""Sweeps: the lab's comparisons through Hydra's joblib launcher, the report on their output, a diverged run that
does not end its sweep, W&B groups, and the launcher and search configs composing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cvae_video.claims import collapse, compare, reads_previous_frame
from cvae_video.report import Run
from cvae_video.report import main as report_main
from tests.conftest import CONF_DIR, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]


def sweep(sweep_dir: Path, data: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`python -m cvae_video.train -m` on the tiny set, its runs under sweep_dir/0, 1, ..."""
    cmd = [
        sys.executable,
        "-m",
        "cvae_video.train",
        "-m",
        f"hydra.sweep.dir={sweep_dir}",
        "paths.output_dir=${hydra:runtime.output_dir}",
    ]
    cmd += [o for o in tiny_overrides(data, sweep_dir) if not o.startswith(("paths.output_dir", "model="))]
    return subprocess.run(
        cmd + list(overrides),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"},
    )


def status(run: Path) -> dict:
    return json.loads((run / "run_status.json").read_text())


@pytest.mark.slow
def test_lab_comparison_in_parallel_through_joblib_then_the_report(tiny_root, tmp_path):
    result = sweep(
        tmp_path / "sweep",
        tiny_root,
        "experiment=lab_comparison",
        "arm=baseline,tfr_linear",
        "lr.base=5e-4",
        "data.train_frame_step=1",  # the tiny set's videos are shorter than a clip of every 40th frame
        "seed=1",
        "trainer.max_epochs=2",
        "trainer.check_val_every_n_epoch=1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    runs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [r.name for r in runs] == ["0", "1"] and all(status(r)["status"] == "completed" for r in runs)

    report = report_main([str(tmp_path / "sweep")])
    text = report.read_text()
    assert "| baseline | 1 (1) | completed |" in text and "| tfr_linear | 1 (1) | completed |" in text
    ceiling = json.loads((tiny_root / "ceiling.json").read_text())["val"]["0"]["psnr_mean"]
    assert "On the same validation data: copy-first-frame " in text  # beside every validation, from the CSV
    assert f"the clean render, the ceiling (val, 1 whole sequence(s)): {ceiling:.2f} dB" in text
    assert "| No KL annealing gives the best PSNR (vs monotonic) | not tested: " in text  # arms not in this sweep
    assert "| Teacher forcing gives worse results than none | not tested: this sweep's model reads no previous" in text
    assert "teacher_forcing.png" in text
    assert "| There is no posterior collapse (under any KL annealing) | " in text
    assert "runs collapsed (no active unit at the end); baseline (cyclical): active units [" in text
    assert (report.parent / "teacher_forcing.png").stat().st_size > 10_000
    assert "2 epochs of 2 batches" in text and "lr milestones are epochs [10, 15] (the lab's: [2, 5]" in text
    assert "Every arm's base lr is 0.0005 unless the arm sets its own (the lab's: 0.001)" in text


@pytest.mark.slow
def test_a_diverged_run_is_recorded_and_the_sweep_goes_on(tiny_root, tmp_path):
    result = sweep(
        tmp_path,
        tiny_root,
        "model=small",
        "lr.base=1e30,1e-3",
        "optim=adam",
        "kl=none",
        "tfr=off",
        "module.nan_patience=2",
        "trainer.limit_val_batches=0",
        "trainer.limit_train_batches=4",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    diverged, completed = status(tmp_path / "0"), status(tmp_path / "1")
    assert diverged["status"] == "diverged" and diverged["epoch"] == 0 and "lr.base" in diverged["error"]
    assert f"step {diverged['step']}" in diverged["error"]
    assert completed["status"] == "completed" and completed["steps"] == 4


@pytest.mark.slow
def test_wandb_groups_a_sweep_and_tags_each_run(tiny_root, tmp_path):
    result = sweep(tmp_path / "sw", tiny_root, "model=small", "logger=wandb", "seed=1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    for run, seed in (("0", 1), ("1", 2)):
        (offline,) = (tmp_path / "sw" / run / "wandb").glob("offline-run-*")
        record = next(offline.glob("*.wandb")).read_bytes()  # the run's settings, as protobuf strings
        assert b"train/sw" in record and f"seed={seed}".encode() in record
        table = json.loads(next(offline.rglob("psnr_per_frame*.table.json")).read_text())
        assert table["columns"] == ["frame", "psnr"] and len(table["data"]) == 11
        assert next(offline.rglob("*.gif")).stat().st_size > 0  # the validation rollout


def hydra_config(overrides: list[str]):
    """The train config with its `hydra` node (launcher, sweeper), as a -m run composes it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    return cfg


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=lab_comparison", "hydra/launcher=joblib"],
        ["experiment=lab_comparison_gpu", "hydra/launcher=joblib", "hydra.launcher.n_jobs=14"],
        ["experiment=lab_comparison", "hydra/launcher=submitit_slurm", "hydra.launcher.gpus_per_node=1"],
        ["hparams_search=optuna"],
    ],
)
def test_launchers_and_search_compose(overrides):
    cfg = hydra_config(overrides)
    assert (
        "joblib" in cfg.hydra.launcher._target_.lower()
        or "submitit" in cfg.hydra.launcher._target_.lower()
        or cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    )
    if "experiment=lab_comparison" in overrides:
        assert cfg.hydra.sweeper.params.arm.split(",")[0] == "baseline" and cfg.hydra.sweeper.params.seed == "1,2"


def test_every_key_the_optuna_search_sets_is_in_its_config():
    """The sweeper overrides each of its params in every trial: a key missing from the config fails them all."""
    cfg = hydra_config(["hparams_search=optuna"])
    missing = [key for key in cfg.hydra.sweeper.params if OmegaConf.select(cfg, key) is None]
    assert not missing and len(cfg.hydra.sweeper.params) == 5, missing


def test_verdict_rule_needs_a_difference_beyond_the_spread():
    assert compare([30.0, 31.0], [28.0, 28.5]) == 1  # 2.25 dB apart, spreads 1.0 and 0.5
    assert compare([30.0, 31.0], [29.8, 30.2]) == 0  # 0.5 dB apart, spread 1.0: inconclusive
    assert compare([20.0, 20.5], [25.0, 25.1]) == -1
    assert compare([20.0], [25.0]) == 0 and compare([], [25.0, 25.1]) == 0  # one seed: no spread to judge by


def run_with_latent(arm: str, units: int, kl: float) -> Run:
    epochs = {"val/active_units": {0: 50.0, 1: float(units)}, "val/kl": {0: 9.0, 1: kl}}
    return Run(Path(arm), arm, "kl_annealing", 1, {"status": "completed"}, epochs, [])


def test_collapse_is_no_active_unit_at_the_last_validation():
    arms = {"baseline": [run_with_latent("baseline", 3, 0.5)], "kl_none": [run_with_latent("kl_none", 0, 0.01)]}
    claim, verdict, _ = collapse(arms)
    assert verdict.startswith("contradicted: 1 of 2 runs collapsed")
    assert "baseline (cyclical): active units [3], KL a frame 0.500; kl_none (none): active units [0]" in verdict
    assert collapse({"baseline": [run_with_latent("baseline", 3, 0.5)]})[1].startswith("supported: 0 of 1 runs")
    old = Run(Path("b"), "baseline", None, 1, {}, {"val/psnr": {0: 20.0}}, [])  # trained before the diagnostics
    assert collapse({"baseline": [old]})[1].startswith("not tested")


@pytest.mark.parametrize("model,reads", [("template", True), ("small", False), ("small_previous", True)])
def test_the_report_knows_whether_teacher_forcing_can_matter(compose_train, model, reads):
    """A sweep of a model that reads no previous frame gets "not tested" for the teacher-forcing claim."""
    assert reads_previous_frame(compose_train([f"model={model}"])) is reads
