"""The benchmark runs and writes its rows and ratios (no timing asserted: speed is the benchmark's to measure)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_bench_runs_and_writes_the_ratios(tmp_path):
    tiny = [
        "--batches",
        "1",
        "--frames",
        "3",
        "--frame-size",
        "8",
        "16",
        "--steps",
        "1",
        "--rollout-frames",
        "3",
        "--rollout-batches",
        "1",
        "--rollout-reps",
        "1",
        "--epoch-clips",
        "4",
        "--out",
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # logic, not speed: one thread is immune to a busy machine
    done = subprocess.run(
        [sys.executable, "-m", "bench.steps", *tiny], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert set(result["ratios"]) == {"lightning_over_plain", "tf_over_reference", "free_over_reference"}
    names = {r["name"] for r in result["rows"]}
    assert {"plain TF", "plain free", "lightning free", "project eager"} <= names
    assert result["ratios"]["lightning_over_plain"] > 0
    assert result["env"]["torch"] == torch.__version__ and result["env"]["threads"] >= 1
    assert "epoch_estimate" in result and "ratios (batch 1)" in done.stdout


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu_at_tiny_sizes(tmp_path):
    env = {**os.environ, "BENCH_DEVICE": "cpu", "BENCH_TINY": "1", "BENCH_LIMIT_S": "600", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", "bench/gpu_check.sh", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (tmp_path / "gpu_check.log").read_text()
    assert "torch.cuda.is_available()" in log and "wrote" in log
    result = json.loads((tmp_path / "bench.json").read_text())
    assert {r["name"] for r in result["rows"]} >= {"plain TF", "plain chunk=0 NCHW free", "lightning free"}
    assert "epoch_estimate" in result
    compiled = json.loads((tmp_path / "fp32" / "bench.json").read_text())["rows"][-1]
    assert compiled["name"] == "project compiled (default)" and compiled["max_abs_diff_vs_eager"] < 1e-4
