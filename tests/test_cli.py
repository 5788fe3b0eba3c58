"""The entry points as a user types them: help, one-line errors, the data a checkpoint names, W&B, a checkpoint
from someone else, and the package installed from a wheel and run from another folder."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cvae_video.errors import UserError
from cvae_video.evaluate import evaluate
from tests.conftest import cli, compose_config, tiny_overrides
from tests.test_evaluate import ROOT, eval_overrides


def tiny_cli_overrides(root: Path) -> list[str]:
    """`tiny_overrides` for the command line: the run dir comes from Hydra (hydra.run.dir, or the default)."""
    return [o for o in tiny_overrides(root, Path()) if not o.startswith("paths.output_dir")]


@pytest.mark.parametrize(
    "module,groups,absent",
    [
        ("train", {"data", "model", "kl", "tfr", "optim", "lr", "trainer", "logger", "debug"}, set()),
        ("evaluate", {"data", "gif"}, {"model", "kl", "optim", "arm", "experiment"}),
        ("predict", {"data", "gif"}, {"model", "kl", "optim", "arm", "experiment"}),
        ("prepare_data", {"data"}, {"kl", "optim"}),
    ],
)
def test_help_says_what_it_does_the_groups_that_matter_and_examples(module, groups, absent):
    result = cli(module, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert text.startswith(f"python -m cvae_video.{module} ") and f"\n  python -m cvae_video.{module} " in text
    listed = {
        line.split()[0]
        for line in text.split("config groups")[1].split("examples:")[0].splitlines()[1:]
        if line.strip()
    }
    assert groups <= listed and not absent & listed


@pytest.mark.parametrize(
    "module,args,message",
    [
        (
            "train",
            ["kl=cyclic"],
            "error: kl=cyclic: kl has no option 'cyclic'; choose one of cyclical, monotonic, none "
            "(did you mean kl=cyclical?)",
        ),
        (
            "train",
            ["optim=AdamW"],
            "error: optim=AdamW: optim has no option 'AdamW'; choose one of adam, adamw (did you mean optim=adamw?)",
        ),
        (
            "train",
            ["data=lab4"],
            "error: data.root is required: give data.root=... (the course's data: data=lab4 "
            "data.root=/path/to/LAB4_Dataset)",
        ),
        (
            "train",
            ["data.batchsize=3"],
            "error: data.batchsize=3: data.batchsize is not a key of the train config (a "
            "typo? `--cfg job` lists the keys; +data.batchsize=3 would add a new one)",
        ),
        (
            "train",
            ["-m", "kl=none,monotonoc", "seed=1,2", "hydra.sweep.dir={tmp}/run"],
            "error: kl=monotonoc: kl has no option 'monotonoc'; choose one of cyclical, monotonic, none "
            "(did you mean kl=monotonic?)",
        ),
        (
            "train",
            ["data=checkpoint"],
            "error: data=checkpoint is evaluate's and predict's (the data a checkpoint was "
            "trained on); name a data set to train on: data=synthetic, or data=lab4 "
            "data.root=/path/to/LAB4_Dataset",
        ),
        (
            "evaluate",
            ["model=template"],
            "error: model=template: cvae_video.evaluate takes no model option: the model and its "
            "training come from the checkpoint",
        ),
        (
            "predict",
            ["+kl=none"],
            "error: +kl=none: cvae_video.predict takes no kl option: the model and its training "
            "come from the checkpoint",
        ),
        (
            "predict",
            ["ckpt_path={tmp}"],
            "error: ckpt_path {tmp} is a folder, not a checkpoint file: give the file, e.g. "
            "ckpt_path=<run dir>/checkpoints/last.ckpt",
        ),
    ],
)
def test_a_bad_command_line_is_one_line_and_leaves_no_run_folder(tmp_path, module, args, message):
    run = tmp_path / "run"
    result = cli(module, *[a.format(tmp=tmp_path) for a in args], f"hydra.run.dir={run}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message.format(tmp=tmp_path)
    assert "Traceback" not in result.stderr and not run.exists()


def test_debug_fdr_trains_one_batch_and_names_only_the_files_it_wrote(tiny_root, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "debug=fdr", *tiny_cli_overrides(tiny_root), f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "val/psnr" in result.stdout and "checkpoints:" not in result.stdout and not (run / "checkpoints").exists()
    assert "the composed config:" in (run / "train.log").read_text()  # the run's log opens with its config


def test_a_local_config_on_the_search_path_sets_the_data(compose_train, tmp_path):
    """`local/default.yaml` (git-ignored in a checkout, or on `hydra.searchpath` for an installed package) is
    composed into every training run."""
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "default.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /data: lab4\ndata:\n  root: /my/LAB4_Dataset\n"
    )
    cfg = compose_train([f"hydra.searchpath=[file://{tmp_path}]", f"paths.output_dir={tmp_path}"])
    assert cfg.data.root == "/my/LAB4_Dataset" and cfg.data.synthetic is None


@pytest.mark.slow
def test_evaluate_and_predict_read_the_data_the_checkpoint_was_trained_on(tiny_root, tmp_path):
    """A checkpoint trained with data=lab4 data.root=DIR: evaluate and predict with no data options read DIR (not the
    default synthetic set), say so, and record it; a folder that has gone is a one-line error."""
    lab4 = shutil.copytree(tiny_root, tmp_path / "LAB4_Dataset")
    run = tmp_path / "run"
    trained = cli("train", "data=lab4", *tiny_cli_overrides(lab4), f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    ckpt = run / "checkpoints" / "last.ckpt"

    predicted = cli("predict", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'predict'}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert f"data: {lab4} (the checkpoint's)" in predicted.stdout
    assert "2 test sequence(s) x 12 frames" in predicted.stdout and "submission.csv (24 rows)" in predicted.stdout
    scores = json.loads((tmp_path / "predict" / "test_scores.json").read_text())
    assert scores["data_root"] == str(lab4) and scores["sequence_ids"] == [0, 1]
    assert "the clean render, the ceiling (test, 2 whole sequence(s))" in predicted.stdout  # the set's ceiling.json
    assert scores["ceiling"]["psnr_mean"] > scores["psnr_mean"]
    for name in ("submission.csv", "test_scores.json", "pred_seq0.gif", "seq0/frame0.png"):  # others can read them
        assert stat.S_IMODE((tmp_path / "predict" / name).stat().st_mode) & stat.S_IROTH, name

    evaluated = cli("evaluate", f"ckpt_path={ckpt}", "data.val_vi_len=6", f"hydra.run.dir={tmp_path / 'evaluate'}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    metrics = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())
    assert metrics["data_root"] == str(lab4) and metrics["sequences"] == 2
    assert metrics["ceiling"]["psnr_mean"] > metrics["psnr_mean"] and "the ceiling (val, 1 whole" in evaluated.stdout

    shutil.rmtree(lab4)
    gone = cli("predict", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'again'}")
    assert gone.returncode == 1 and not (tmp_path / "again").exists()
    assert gone.stderr.strip().splitlines()[-1] == (
        f"error: the checkpoint's data folder {lab4} does not exist: point to the data with data.root=/path/to/it "
        f"(another data set: data=lab4 data.root=...)"
    )


@pytest.mark.slow
def test_wandb_offline_with_a_long_override_trains_keeps_the_csv_and_says_how_to_sync(tiny_root, tmp_path):
    long_root = tmp_path / ("LAB4_Dataset_" + "of_a_course_with_a_long_folder_name_" * 2)
    long_root.symlink_to(tiny_root)
    assert len(f"data.root={long_root}") > 100
    run = tmp_path / "run"
    result = cli("train", "logger=wandb", *tiny_cli_overrides(long_root), f"hydra.run.dir={run}", "tags=[a_test]")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "csv" / "version_0" / "metrics.csv").is_file()
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and f"wandb sync {offline[0]}" in result.stdout


@pytest.mark.parametrize(
    "key,target", [("net", "os.makedirs"), ("net", "builtins.print"), ("optimizer", "shutil.rmtree")]
)
def test_a_checkpoint_names_only_buildable_targets(tiny_root, tiny_run, tmp_path, key, target):
    """A shared checkpoint is data: a `_target_` outside the package's classes and torch's optimizers and schedulers
    is refused before anything is built (os.makedirs would make the folder)."""
    ckpt = torch.load(tiny_run / "checkpoints" / "last.ckpt", weights_only=True)
    made = tmp_path / "made_by_the_checkpoint"
    ckpt["run_config"]["module"][key] = {"_target_": target, "name": str(made)}
    path = tmp_path / "shared.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=rf"refused to build '{target}' \(module\.{key}\._target_\)"):
        evaluate(compose_config("evaluate", eval_overrides(tiny_root, path, tmp_path / "out")))
    assert not made.exists()


@pytest.mark.slow
def test_an_installed_package_carries_its_configs_and_runs_from_another_folder(tiny_root, tmp_path):
    """`pip install .` (here into a folder on PYTHONPATH, the dependencies being those of this environment): the
    configs come with it, --help answers, and a run from another folder writes its outputs there."""
    source, site, work = tmp_path / "source", tmp_path / "site", tmp_path / "elsewhere"
    shutil.copytree(ROOT / "cvae_video", source / "cvae_video", ignore=shutil.ignore_patterns("__pycache__", "local"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    assert (site / "cvae_video" / "conf" / "train.yaml").is_file() and (site / "cvae_video/conf/kl/none.yaml").is_file()
    work.mkdir()
    env = {"PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import cvae_video; print(cvae_video.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert where.stdout.startswith(str(site))
    assert cli("train", "--help", cwd=work, env=env).returncode == 0
    result = cli("train", *tiny_cli_overrides(tiny_root), cwd=work, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(work.glob("outputs/train/runs/*/checkpoints/last.ckpt"))) == 1
