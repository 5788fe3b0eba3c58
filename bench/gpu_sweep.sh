#!/usr/bin/env bash
# Issue 13's GPU size in one call on one CUDA GPU: experiment=lab_comparison_gpu (the lab's template, batch 2, bf16,
# 20 epochs of 10 batches), its 14 runs at once through Hydra's joblib launcher, then the report.
#
#     bash bench/gpu_sweep.sh [OUT_DIR]     # OUT_DIR: $1, else $OUT, else outputs/gpu_sweep; N_JOBS=14 by default;
#                                             SWEEP_TIMEOUT=S stops the runs after S seconds and reports what they did
#
# Writes OUT_DIR/gpu_sweep.log (with the wall time, data included) and OUT_DIR/report/ (REPORT.md, 4 figures).
# Hydra (and for sweeps its joblib launcher and joblib) may be missing on a GPU machine without network: fetch
# the wheels here (pip download hydra-core omegaconf antlr4-python3-runtime hydra-joblib-launcher joblib --no-deps
# -d .whl), carry .whl/, and there run pip install --no-index --no-deps --target /tmp/site .whl/*.whl and
# export PYTHONPATH=/tmp/site before this script.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-outputs/gpu_sweep}}
SWEEP=${SWEEP_DIR:-/tmp/gpu_sweep}   # the runs (checkpoints, logs) stay out of OUT_DIR
mkdir -p "$OUT_DIR"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=python3
{
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
START=$SECONDS
$PY -m cvae_video.prepare_data > /dev/null || exit 1   # the default set, made once before the runs start
rm -rf "$SWEEP"
${SWEEP_TIMEOUT:+timeout $SWEEP_TIMEOUT} $PY -m cvae_video.train -m experiment=lab_comparison_gpu hydra/launcher=joblib "hydra.launcher.n_jobs=${N_JOBS:-14}" \
    "hydra.sweep.dir=$SWEEP" > "$OUT_DIR/sweep_runs.log" 2>&1
echo "sweep exit $?: $((SECONDS - START)) s, data included"
grep -h '"status"' "$SWEEP"/*/run_status.json | sort | uniq -c
$PY -m cvae_video.report "$SWEEP" --out "$OUT_DIR/report"
} 2>&1 | tee "$OUT_DIR/gpu_sweep.log"
