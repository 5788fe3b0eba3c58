import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvae_video.module import CVAEModule
from cvae_video.predict import predict
from cvae_video.video_io import write_gif, write_submission
from tests.conftest import cli, compose_config

PIXELS = 3 * 32 * 64


def predict_overrides(root: Path, ckpt: Path, out: Path) -> list[str]:
    return [f"ckpt_path={ckpt}", f"data.root={root}", "data.val_vi_len=12", f"paths.output_dir={out}", "device=cpu"]


def read_png(path: Path) -> np.ndarray:
    """(3, H, W) uint8, the submission's (C, H, W) order."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).transpose(2, 0, 1)


def test_submission_format_frames_and_gifs(tiny_root, tiny_run, tmp_path, monkeypatch):
    batch_sizes = []
    rollout = CVAEModule.rollout
    monkeypatch.setattr(
        CVAEModule, "rollout", lambda self, first, poses: batch_sizes.append(len(first)) or rollout(self, first, poses)
    )
    results = predict(
        compose_config("predict", predict_overrides(tiny_root, tiny_run / "checkpoints" / "last.ckpt", tmp_path))
    )
    assert batch_sizes == [2]  # both test sequences in one rollout

    with open(tmp_path / "submission.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id"] + [str(c) for c in range(PIXELS)]
    body = np.array(rows[1:], dtype=np.int64)
    assert body.shape == (2 * 12, 1 + PIXELS)  # 2 sequences x 12 frames
    assert body[:, 0].tolist() == list(range(24))
    assert body[:, 1:].min() >= 0 and body[:, 1:].max() <= 255
    assert all("." not in v for v in rows[1][1:])  # integers, not floats
    for s in range(2):
        given = read_png(tiny_root / "test" / "test_img" / str(s) / "frame0.png")
        assert (body[s * 12, 1:] == given.reshape(-1)).all()  # frame 0 is the given first frame
        for k in (0, 5, 11):
            assert (body[s * 12 + k, 1:] == read_png(tmp_path / f"seq{s}" / f"frame{k}.png").reshape(-1)).all()
        assert len(list((tmp_path / f"seq{s}").glob("frame*.png"))) == 12
        with Image.open(tmp_path / f"pred_seq{s}.gif") as gif:
            assert gif.n_frames == 12
    scores = json.loads((tmp_path / "test_scores.json").read_text())
    assert set(scores["per_sequence"]) == {"0", "1"} and scores["psnr_mean"] == results["psnr_mean"]
    assert scores["submission_rows"] == 24


def test_sequence_count_comes_from_disk(tiny_root, tiny_run, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    for sub in ("test_img", "test_label"):  # one sequence, no ground truth
        shutil.rmtree(root / "test" / sub / "1")
    shutil.rmtree(root / "test" / "test_gt")
    out = tmp_path / "out"
    results = predict(compose_config("predict", predict_overrides(root, tiny_run / "checkpoints" / "last.ckpt", out)))
    assert results["sequence_ids"] == [0] and results["submission_rows"] == 12 and "psnr_mean" not in results
    assert len((out / "submission.csv").read_text().splitlines()) == 1 + 12
    assert not (out / "test_scores.json").exists() and not (out / "seq1").exists()


def test_submission_pixels_are_rounded_255_times_the_value(tmp_path):
    videos = torch.zeros(1, 2, 3, 1, 2)  # 1 sequence, 2 frames of 1 x 2 pixels
    videos[0, 1, :, 0, 0] = torch.tensor([0.5, 1.0, 0.1])
    videos[0, 1, :, 0, 1] = torch.tensor([2 / 255, 1.2, -0.3])  # out of range: clamped
    assert write_submission(tmp_path / "s.csv", videos) == 2
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines == ["id,0,1,2,3,4,5", "0,0,0,0,0,0,0", "1,128,2,255,255,26,0"]  # (C, H, W) order


def test_gif_has_one_frame_per_time_step_and_the_panels_side_by_side(tmp_path):
    video = torch.rand(7, 3, 8, 16)
    write_gif(tmp_path / "a.gif", {"truth": video, "prediction": video.flip(0)}, fps=10, scale=2)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 7 and gif.info["duration"] == 100
        assert gif.width == 2 * (16 + 16 + 2)  # two panels and the gap, doubled


@pytest.mark.slow
def test_cli_predict(tiny_root, tiny_run, tmp_path):
    out, ckpt = tmp_path / "pred", tiny_run / "checkpoints" / "last.ckpt"
    result = cli("predict", f"ckpt_path={ckpt}", f"data.root={tiny_root}", "data.val_vi_len=12", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "submission.csv (24 rows)" in result.stdout
    assert (
        (out / "submission.csv").exists() and (out / "pred_seq1.gif").exists() and (out / "test_scores.json").exists()
    )
