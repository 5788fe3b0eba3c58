"""Lightning's DDP on CPU: 2 processes (gloo) train one short epoch on different clips; rank 0 writes the
checkpoint, which loads in a single-process evaluate. Lightning relaunches the command line, so the test runs
the CLI as a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]


def cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_on_different_clips_and_the_checkpoint_evaluates(tiny_root, tmp_path):
    run = tmp_path / "ddp"
    overrides = [o for o in tiny_overrides(tiny_root, run) if not o.startswith("paths.output_dir")]
    result = cli(
        "cvae_video.train",
        f"hydra.run.dir={run}",
        *overrides,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.benchmark=false",
        "+callbacks.batches._target_=tests.helpers.RecordBatches",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    clips = [(run / f"batches_rank{rank}.txt").read_text().split() for rank in (0, 1)]
    assert len(clips[0]) == len(clips[1]) == 4  # 2 batches of 2 clips on each process
    assert not set(clips[0]) & set(clips[1])  # the distributed sampler split the clips
    assert len((run / "val_psnr_per_frame.jsonl").read_text().splitlines()) == 1  # written once, by rank 0

    evaluated = cli(
        "cvae_video.evaluate",
        f"ckpt_path={run}/checkpoints/last.ckpt",
        f"data.root={tiny_root}",
        "data.val_vi_len=12",
        f"hydra.run.dir={tmp_path / 'eval'}",
        "eval.num_samples=1",
        "device=cpu",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["predicted_frames"] == 11
