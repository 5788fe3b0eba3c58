import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cvae_video.cli import TRAINING_GROUPS, options
from cvae_video.errors import UserError
from cvae_video.train import train
from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {  # every option of the training groups (the Optuna sweeper runs only under -m: tests/test_sweep.py)
    g: [o for o in options(g) if o != "checkpoint"]  # data=checkpoint is evaluate's and predict's
    for g in ("data", *TRAINING_GROUPS)
    if g != "hparams_search"
}


def preset_overrides(tiny_root, tmp_path) -> list[str]:
    """`tiny_overrides` without its `model=small`: a preset chooses its model (lab_comparison sets widths)."""
    return [o for o in tiny_overrides(tiny_root, tmp_path) if o != "model=small"]


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_config_option_composes_and_instantiates(compose_train, tiny_root, tmp_path, group, option):
    tiny = preset_overrides(tiny_root, tmp_path) if group == "experiment" else tiny_overrides(tiny_root, tmp_path)
    cfg = compose_train(tiny + [f"{group}={option}"])
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    net = instantiate(cfg.model)
    module = instantiate(cfg.module, _partial_=True)(run_config=None)
    opt = module.configure_optimizers()
    assert opt["optimizer"].param_groups[0]["lr"] == cfg.lr.base
    for name, cb in cfg.callbacks.items():
        if name in ("beta", "tfr"):
            value = instantiate(cb).schedule(3)
            assert 0.0 <= value <= 1.0
    assert sum(p.numel() for p in net.parameters()) > 0


def test_lab_settings_are_the_defaults(compose_train, tiny_root, tmp_path):
    cfg = compose_train([f"paths.output_dir={tmp_path}"])
    assert (cfg.lr.base, cfg.data.batch_size, cfg.data.train_vi_len, cfg.data.val_vi_len) == (1e-3, 2, 16, 630)
    assert list(cfg.lr.scheduler.milestones) == [2, 5] and cfg.lr.scheduler.gamma == 0.1
    assert (cfg.model.frame_dim, cfg.model.label_dim, cfg.model.noise_dim, cfg.model.fusion_dim) == (128, 32, 12, 192)
    assert (cfg.model.label_slope, cfg.model.posterior_slope, cfg.model.output_sigmoid) == (1.0, 1.0, False)
    assert cfg.trainer.max_epochs == 70 and cfg.module.grad_clip_val == 1.0
    assert (cfg.data.frame_H, cfg.data.frame_W, cfg.data.partial, cfg.data.val_batch_size) == (32, 64, 1.0, 1)
    assert cfg.optim._target_ == "torch.optim.Adam" and cfg.data.train_frame_step == 1
    assert (cfg.kl._target_.rsplit(".", 1)[1], cfg.kl.cycle, cfg.kl.ratio) == ("cyclical", 10, 1)
    lab_tfr = compose_train(["tfr=linear"]).tfr  # the lab's stated teacher forcing, one override away
    assert (lab_tfr._target_.rsplit(".", 1)[1], lab_tfr.start, lab_tfr.tfr_sde, lab_tfr.tfr_d_step) == (
        "linear_decay",
        1.0,
        10,
        0.1,
    )
    # the README's deviations, each pinned: a change here must change the README's table too
    assert (cfg.module.clip_per_network, cfg.module.teacher_forcing_per, cfg.data.shuffle) == (True, "batch", True)
    assert (cfg.tfr._target_.rsplit(".", 1)[1], cfg.tfr.value) == ("constant", 0.0)  # no teacher forcing
    assert cfg.callbacks.beta.per_step is True  # beta moves every step (the lab: once an epoch)
    assert compose_train(["trainer=gpu"]).trainer.precision == "bf16-mixed"
    report = compose_train([f"paths.output_dir={tmp_path}", "optim=adamw", "lr=constant", "lr.base=1e-4"])
    assert report.optim._target_ == "torch.optim.AdamW" and report.optim.lr == 1e-4


def test_beta_per_step_moves_between_epoch_values(compose_train, tiny_root, tmp_path):
    cfg = compose_train(
        tiny_overrides(tiny_root, tmp_path)
        + ["trainer.limit_train_batches=4", "kl=cyclical", "kl.cycle=2", "callbacks.beta.per_step=true"]
    )
    train(cfg)
    with open(tmp_path / "csv" / "version_0" / "metrics.csv", newline="") as f:
        beta = [float(r["schedule/beta"]) for r in csv.DictReader(f) if r.get("schedule/beta")]
    assert beta == pytest.approx([0.0, 0.125, 0.25, 0.375])  # epoch 0 -> 0, epoch 1 -> 0.5, by batch of 4


def test_fit_logs_schedules_writes_checkpoints_and_per_frame_curve(compose_train, tiny_root, tmp_path):
    cfg = compose_train(tiny_overrides(tiny_root, tmp_path) + ["trainer.max_epochs=2", "kl=monotonic", "kl.ratio=0.5"])
    metrics = train(cfg)
    assert {
        "train/loss_epoch",
        "train/mse_epoch",
        "train/kl_epoch",
        "schedule/beta",
        "schedule/tfr",
        "schedule/lr",
        "val/psnr",
        "val/ssim",
        "val/kaggle_psnr",
        "time/train_minutes",
        "val/kl",
        "val/active_units",
    } <= metrics.keys()
    assert 0 < metrics["time/train_minutes"] < 5
    assert metrics["schedule/beta"] == 1.0  # epoch 1 of 2 with ratio 0.5
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert len(list((tmp_path / "checkpoints").glob("best-epoch*.ckpt"))) == 1
    curves = (tmp_path / "val_psnr_per_frame.jsonl").read_text().splitlines()
    assert len(curves) == 2 and len(OmegaConf.create(curves[0]).psnr) == 11
    latent = OmegaConf.create(curves[-1]).latent  # what z carries, at each validation
    assert len(latent.kl_per_step) == 11 and len(latent.kl_per_channel) == 8 == len(latent.active_per_channel)
    assert latent.units == 8 * 8 * 16 and latent.active_units == metrics["val/active_units"]
    csv = (tmp_path / "csv" / "version_0" / "metrics.csv").read_text()
    assert "val/psnr" in csv and "train/loss_step" in csv
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["run_config"]["model"]["frame_dim"] == 16 and ckpt["epoch"] == 1


@pytest.mark.parametrize("tfr,expected", [("tfr=off", 0.0), ("tfr=linear", 1.0)])
def test_teacher_forcing_follows_the_ratio(compose_train, tiny_root, tmp_path, tfr, expected):
    cfg = compose_train(tiny_overrides(tiny_root, tmp_path) + [tfr, "trainer.limit_val_batches=0"])
    metrics = train(cfg)
    assert metrics["train/teacher_forcing"] == expected and metrics["schedule/tfr"] == expected


@pytest.mark.parametrize(
    "experiment",
    [
        pytest.param(
            e, marks=pytest.mark.skipif(e.endswith("_gpu") and not torch.cuda.is_available(), reason="a GPU preset")
        )
        for e in GROUPS["experiment"]
    ],
)
def test_every_experiment_preset_trains_and_validates(compose_train, tiny_root, tmp_path, experiment):
    cfg = compose_train(
        preset_overrides(tiny_root, tmp_path)
        + [
            f"experiment={experiment}",
            "data.train_frame_step=3",  # 24-frame videos
            "trainer.check_val_every_n_epoch=1",
        ]
        + (["data.train_first_gap=5"] if experiment == "door_prior" else [])  # its gaps of up to 585 frames
    )
    assert cfg.task_name == experiment
    metrics = train(cfg)
    assert metrics["train/skipped"] == 0 and torch.isfinite(torch.tensor(metrics["train/loss_epoch"]))
    assert 0 < metrics["val/psnr"] < 100 and (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_same_seed_gives_same_metrics(compose_train, tiny_root, tmp_path):
    runs = [train(compose_train(tiny_overrides(tiny_root, tmp_path / str(i)) + ["seed=7"])) for i in range(2)]
    assert runs[0]["val/psnr"] == runs[1]["val/psnr"] and runs[0]["train/loss_epoch"] == runs[1]["train/loss_epoch"]


def test_nonfinite_loss_skips_the_step(compose_train, tiny_root, tmp_path):
    cfg = compose_train(
        tiny_overrides(tiny_root, tmp_path)
        + [
            "lr.base=1e30",
            "optim=adam",
            "trainer.limit_train_batches=4",
            "trainer.limit_val_batches=0",
            "module.nan_patience=100",
            "kl=none",
            "tfr=off",
        ]
    )
    metrics = train(cfg)
    assert metrics["train/skipped"] >= 1


@pytest.mark.slow
def test_cli_multirun_gives_one_run_per_option(tiny_root, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "cvae_video.train",
        "-m",
        "kl=none,cyclical",
        f"hydra.sweep.dir={tmp_path}",
        "paths.output_dir=${hydra:runtime.output_dir}",
    ]
    cmd += [o for o in tiny_overrides(tiny_root, tmp_path) if not o.startswith("paths.output_dir")]
    cmd += ["trainer.limit_val_batches=0"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert runs == ["0", "1"]
    assert "kl=none" in (tmp_path / "0/.hydra/overrides.yaml").read_text()
    assert "kl=cyclical" in (tmp_path / "1/.hydra/overrides.yaml").read_text()
    for run in runs:
        assert (tmp_path / run / "checkpoints" / "last.ckpt").exists()
        assert (tmp_path / run / ".hydra" / "config.yaml").exists()


@pytest.mark.parametrize("margin,warned", [(1000.0, True), (-1000.0, False)])
def test_a_validation_near_copy_first_frame_says_so(compose_train, tiny_root, tmp_path, caplog, margin, warned):
    cfg = compose_train(tiny_overrides(tiny_root, tmp_path) + [f"module.dead_margin_db={margin}"])
    metrics = train(cfg)
    assert "val/psnr_over_copy_first" in metrics
    lines = [r.getMessage() for r in caplog.records if "copy-first-frame" in r.getMessage()]
    assert bool(lines) == warned
    if warned:
        assert f"val/psnr {metrics['val/psnr']:.2f} dB" in lines[0]


def test_validating_mid_epoch_does_not_change_training(compose_train, tiny_root, tmp_path):
    """Validation draws z from its own generator: training draws the same z whether it validates or not."""
    weights = []
    for name, val in (("often", ["trainer.val_check_interval=1"]), ("never", ["trainer.limit_val_batches=0"])):
        out = tmp_path / name
        train(compose_train(tiny_overrides(tiny_root, out) + ["trainer.limit_train_batches=3", "kl=none"] + val))
        weights.append(torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_the_template_has_the_courses_activations_and_its_videos_are_clamped(compose_train, tmp_path):
    cfg = compose_train(
        [
            f"paths.output_dir={tmp_path}",
            "model=template",
            "model.frame_dim=16",
            "model.label_dim=8",
            "model.noise_dim=4",
            "model.fusion_dim=16",
        ]
    )
    module = instantiate(cfg.module, _partial_=True)(run_config=None)
    layers = list(module.net.modules())
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in layers)
    assert sum(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 1.0 for m in layers) == 2
    torch.nn.init.constant_(module.net.generator[-1].bias, 3.0)  # raw outputs far above 1
    poses, first = torch.rand(1, 5, 3, 32, 64), torch.rand(1, 1, 3, 32, 64)
    with torch.no_grad():
        video = module.rollout(first, poses)
        raw, _ = module.net.unroll(poses, first, use_posterior=False, teacher_forcing=False)
    assert raw.max() > 1.5 and video.min() >= 0 and video.max() <= 1


def test_progress_bar_off_trains_and_a_refused_trainer_option_is_one_line(compose_train, tiny_root, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_root, tmp_path) if o != "~callbacks.progress_bar"]
    assert "val/psnr" in train(compose_train(overrides))  # the config's RichProgressBar is left out
    with pytest.raises(UserError, match=r"^trainer: .*val_check_interval"):
        train(compose_train(tiny_overrides(tiny_root, tmp_path / "bad") + ["trainer.val_check_interval=-3"]))


@pytest.mark.parametrize(
    "model",
    [
        ["model=small"],
        ["model=template", "model.frame_dim=16", "model.label_dim=8", "model.noise_dim=4", "model.fusion_dim=16"],
    ],
)
def test_learned_prior_trains_and_its_checkpoint_holds_it(compose_train, tiny_root, tmp_path, model):
    from cvae_video.inference import load_module

    metrics = train(compose_train(tiny_overrides(tiny_root, tmp_path) + model + ["model.prior=learned"]))
    assert metrics["train/skipped"] == 0 and 0 < metrics["train/kl_epoch"] < float("inf")
    module, _ = load_module(str(tmp_path / "checkpoints" / "last.ckpt"), torch.device("cpu"))
    assert module.run_config["model"]["prior"] == "learned" and module.net.learned_prior is not None


def test_the_room_source_is_the_training_frames_median_in_the_checkpoint(compose_train, tiny_root, tmp_path):
    from cvae_video.data.datamodule import LAB4DataModule
    from cvae_video.inference import load_module

    cfg = compose_train(tiny_overrides(tiny_root, tmp_path))
    assert "room" in cfg.model.sources  # model=small's default
    train(cfg)
    module, _ = load_module(str(tmp_path / "checkpoints" / "last.ckpt"), torch.device("cpu"))
    data = LAB4DataModule(str(tiny_root), train_vi_len=6, val_vi_len=12)
    data.setup("fit")
    torch.testing.assert_close(module.net.room[0], data.static_background())
