"""Bad input gives one line naming the culprit and writes nothing; resume after SIGKILL is exact."""

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cvae_video.data.datamodule import LAB4DataModule
from cvae_video.data.synthetic import generate
from cvae_video.errors import UserError
from cvae_video.train import train
from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(tiny_root, tmp_path) -> Path:
    """A private copy of the tiny data set, to break."""
    return Path(shutil.copytree(tiny_root, tmp_path / "data"))


def setup_error(root: Path, stage: str = "fit", **kw) -> str:
    dm = LAB4DataModule(str(root), **{"train_vi_len": 6, "val_vi_len": 12, **kw})
    with pytest.raises(UserError) as err:
        dm.setup(stage)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_root_and_missing_split(data, tmp_path):
    assert str(tmp_path / "nowhere") in setup_error(tmp_path / "nowhere")
    shutil.rmtree(data / "val" / "val_label")
    message = setup_error(data)
    assert str(data / "val" / "val_label") in message and "expected LAB4 layout" in message


def test_frame_without_pose_and_pose_without_frame(data):
    (data / "train/train_label/frame5.png").unlink()
    assert "frame5.png has no pose image" in setup_error(data)
    generate_copy = data / "val/val_img/frame3.png"
    generate_copy.unlink()
    (data / "train/train_label/frame5.png").write_bytes((data / "train/train_label/frame4.png").read_bytes())
    message = setup_error(data)
    assert str(data / "val/val_label/frame3.png") in message and "has no frame" in message


def test_name_without_index_and_duplicate_index(data):
    (data / "train/train_img/frame7.png").rename(data / "train/train_img/frameX.png")
    assert "frameX.png: image name has no frame index" in setup_error(data)
    (data / "train/train_img/frameX.png").rename(data / "train/train_img/frame7.png")
    shutil.copy(data / "train/train_img/frame8.png", data / "train/train_img/frame008.png")
    assert "duplicate frame index 8" in setup_error(data)


def test_corrupt_png_is_named(data):
    path = data / "train/train_img/frame3.png"
    path.write_bytes(path.read_bytes()[:40])  # truncated
    message = setup_error(data)
    assert str(path) in message and "corrupt" in message


def test_non_rgb_image_is_converted(data):
    path = data / "train/train_img/frame2.png"
    Image.open(path).convert("L").save(path)
    dm = LAB4DataModule(str(data), train_vi_len=6, val_vi_len=12)
    dm.setup("fit")
    assert dm.train_set[0][0].shape == (6, 3, 32, 64)


def test_mixed_sizes_name_the_odd_file_and_both_sizes(data):
    path = data / "train/train_img/frame9.png"
    Image.open(path).resize((128, 64)).save(path)
    message = setup_error(data)
    assert str(path) in message and "128x64" in message and "64x32" in message


def test_empty_split_and_lengths(data):
    assert "fewer than a clip spans (30: data.train_vi_len=30" in setup_error(data, train_vi_len=30)
    assert "fewer than a clip spans (34: data.train_vi_len=12, data.train_frame_step=3)" in setup_error(
        data, train_vi_len=12, train_frame_step=3
    )
    assert "shorter than the rollout data.val_vi_len=13" in setup_error(data, val_vi_len=13)
    assert "test sequence 0: 12 pose images, shorter than data.val_vi_len=13" in setup_error(
        data, "test", val_vi_len=13
    )
    for p in (data / "val/val_img").iterdir():
        p.unlink()
    assert "empty folder" in setup_error(data)


@pytest.mark.parametrize(
    "override,key",
    [
        ("lr.base=0", "lr.base=0"),
        ("tfr.value=1.5", "tfr.value=1.5"),
        ("tfr=linear tfr.start=1.5", "tfr.start=1.5"),
        ("tfr=linear tfr.tfr_d_step=-0.1", "tfr.tfr_d_step=-0.1"),
        ("kl.ratio=0", "kl.ratio=0"),
        ("kl.cycle=0", "kl.cycle=0"),
        ("data.batch_size=0", "data.batch_size=0"),
        ("data.frame_H=0", "data.frame_H=0"),
        ("module.teacher_forcing_per=step", "module.teacher_forcing_per"),
        ("data.train_frame_step=0", "data.train_frame_step=0"),
        ("trainer.max_epochs=-1", "trainer.max_epochs=-1"),
        ("model.prior=lerned", "model.prior=lerned is not one of fixed, learned"),
    ],
)
def test_out_of_range_config_values_name_the_key(compose_train, data, tmp_path, override, key):
    cfg = compose_train(tiny_overrides(data, tmp_path / "out") + override.split())
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_validation_interval_longer_than_an_epoch_names_the_epoch_length(compose_train, data, tmp_path):
    cfg = compose_train(tiny_overrides(data, tmp_path) + ["trainer.val_check_interval=3"])  # 2 batches an epoch
    with pytest.raises(
        UserError,
        match=r"^trainer\.val_check_interval=3 is more training batches than an epoch "
        r"has \(2\): give at most 2",
    ):
        train(cfg)


def test_checkpoint_missing_or_of_another_model_size(compose_train, data, tmp_path):
    cfg = compose_train(tiny_overrides(data, tmp_path / "a") + ["trainer.limit_val_batches=0"])
    train(cfg)
    with pytest.raises(UserError, match="does not exist"):
        train(compose_train(tiny_overrides(data, tmp_path / "b") + [f"ckpt_path={tmp_path}/none.ckpt"]))
    bigger = tiny_overrides(data, tmp_path / "c") + [
        "model.frame_dim=64",
        f"ckpt_path={tmp_path}/a/checkpoints/last.ckpt",
    ]
    with pytest.raises(
        UserError, match=r"another model size: net\.\S+ has shape \(\d+, .*\) there, \(\d+, .*\) in this model"
    ):
        train(compose_train(bigger))
    with pytest.raises(UserError, match="ckpt_path=last: no"):
        train(compose_train(tiny_overrides(data, tmp_path / "d") + ["ckpt_path=last"]))


def run_cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cvae_video.train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )


@pytest.mark.slow
def test_cli_prints_one_line_and_writes_nothing(data, tmp_path):
    (data / "val/val_label/frame4.png").unlink()
    run_dir = tmp_path / "run"
    result = run_cli(f"data.root={data}", "model=small", f"hydra.run.dir={run_dir}")
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: {data / 'val/val_img/frame4.png'} has no pose image {data / 'val/val_label/frame4.png'}"
    )
    assert "Traceback" not in result.stderr and not run_dir.exists()
    assert not run_dir.exists()  # the command line's own errors: tests/test_cli.py


def read_epochs(run_dir: Path) -> dict[int, dict[str, float]]:
    """Per-epoch beta (its last value), tfr and lr from every csv/version_*/metrics.csv of a run (a resume adds a
    version)."""
    epochs: dict[int, dict[str, float]] = {}
    for path in sorted((run_dir / "csv").glob("version_*/metrics.csv")):
        rows = list(csv.DictReader(path.open()))
        for row in rows:  # beta is logged every step (its epoch's last value wins), tfr once an epoch
            for key in ("beta", "tfr"):
                if row.get(f"schedule/{key}"):
                    epochs.setdefault(int(row["epoch"]), {})[key] = float(row[f"schedule/{key}"])
        lrs = [float(r["schedule/lr"]) for r in rows if r.get("schedule/lr")]
        starts = sorted({int(r["epoch"]) for r in rows if r.get("schedule/beta")})
        for epoch, lr in zip(starts, lrs):
            epochs[epoch]["lr"] = lr
    return epochs


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.slow
@pytest.mark.parametrize(
    "device",
    [
        pytest.param([], id="cpu"),
        pytest.param(  # on CUDA, z comes from its generator
            ["trainer=gpu", "trainer.precision=32-true", "trainer.deterministic=true", "trainer.benchmark=false"],
            marks=CUDA,
            id="cuda",
        ),
    ],
)
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, device):
    data = generate(
        tmp_path / "data",
        seed=1,
        train_videos=2,
        train_video_len=12,
        val_videos=1,
        test_videos=1,
        sequence_len=6,
        height=16,
        width=32,
    )
    common = [
        *device,
        f"data.root={data}",
        "model=small",
        "data.frame_H=16",
        "data.frame_W=32",
        "data.train_vi_len=4",
        "data.val_vi_len=6",
        "data.batch_size=1",
        "trainer.max_epochs=3",
        "kl=monotonic",
        "kl.ratio=0.7",
        "tfr=linear",
        "tfr.tfr_sde=0",
        "tfr.tfr_d_step=0.4",
        "lr=multistep",
        "lr.scheduler.milestones=[1,2]",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=1.0",
    ]  # checkpoints at epoch ends: resume from one
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_cli(*common, f"hydra.run.dir={straight}").returncode == 0

    crash = run_cli(
        *common,
        f"hydra.run.dir={killed}",
        "+callbacks.kill._target_=tests.helpers.KillAtStep",
        "+callbacks.kill.step=9",
    )  # 6 steps an epoch: mid-epoch 2
    assert crash.returncode == -signal.SIGKILL
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6

    first_record = (killed / ".hydra" / "overrides.yaml").read_text()
    refused = run_cli(f"hydra.run.dir={killed}", "ckpt_path=last", "model.noise_dim=4")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1].startswith(
        f"error: resuming {killed / 'checkpoints' / 'last.ckpt'}: model.noise_dim would change from the run's 8 to 4"
    )
    # the run's overrides come from its checkpoint: only the test's crash is moved past the run's end
    resumed = run_cli(f"hydra.run.dir={killed}", "ckpt_path=last", "+callbacks.kill.step=1000")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (killed / ".hydra" / "overrides.yaml").read_text() == first_record
    assert len(list((killed / ".hydra").glob("resume_*/overrides.yaml"))) == 1  # the refused resume left none
    want, got = read_epochs(straight), read_epochs(killed)
    assert sorted(got) == [0, 1, 2] and got == want
    final = [torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, killed)]
    assert final[0]["global_step"] == final[1]["global_step"] == 18
    weights = [f["state_dict"] for f in final]  # the RNG state is restored too: same coins, same z
    assert all(torch.allclose(weights[0][k], weights[1][k]) for k in weights[0])


def test_nan_guard_stops_after_patience_with_epoch_step_and_advice(compose_train, data, tmp_path):
    cfg = compose_train(
        tiny_overrides(data, tmp_path)
        + ["lr.base=1e30", "optim=adam", "trainer.limit_train_batches=4", "module.nan_patience=2", "kl=none", "tfr=off"]
    )
    with pytest.raises(
        UserError,
        match=r"2 consecutive steps with a non-finite loss or gradient \(epoch 0, step 1\); try a lower lr\.base",
    ):
        train(cfg)
