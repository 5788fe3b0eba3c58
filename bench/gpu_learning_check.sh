#!/usr/bin/env bash
# The template's learning under the lab's stated recipe and the small model's clips, in one call on one CUDA GPU
# (~5 minutes): teacher forcing, tfr=linear, which the defaults leave out (bench/gpu_session.sh has both).
#
#     bash bench/gpu_learning_check.sh [OUT_DIR]     # OUT_DIR: $1, else $OUT, else outputs/gpu_learning_check
#
# Side by side on the one GPU (the lab's batch 2 is launch-bound, so the runs share it at nearly full speed):
#   template, template+monotonic+adamw       trainer=gpu (bf16-mixed), batch 2, 3 minutes each, across beta's
#                                            first rise (cyclical: epoch 1), validating 4 times an epoch
#   small, data.train_frame_step=1|20|40     the demo's recipe on the GPU, 8 epochs of 31 batches (248 steps)
#   the exact-resume test on CUDA            tests/test_reliability.py -k "sigkill and cuda"
# Then prints every run's validation curve.
# Hydra (and for sweeps its joblib launcher and joblib) may be missing on a GPU machine without network: fetch
# the wheels here (pip download hydra-core omegaconf antlr4-python3-runtime hydra-joblib-launcher joblib --no-deps
# -d .whl), carry .whl/, and there run pip install --no-index --no-deps --target /tmp/site .whl/*.whl and
# export PYTHONPATH=/tmp/site before this script.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-outputs/gpu_learning_check}}
RUNS=${RUNS_DIR:-$OUT_DIR/runs}   # RUNS_DIR: elsewhere (the device tool brings back at most 8 files of $OUT)
mkdir -p "$RUNS"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
PY=python3
{
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c 'import torch, lightning, hydra; print("torch", torch.__version__, "lightning", lightning.__version__, "hydra", hydra.__version__)'
START=$SECONDS
$PY -m cvae_video.prepare_data > /dev/null || exit 1   # the default set, made once before the runs start
echo "data made in $((SECONDS - START)) s"

COMMON=(trainer=gpu trainer.enable_progress_bar=false "~callbacks.progress_bar" trainer.enable_model_summary=false)
TEMPLATE=("${COMMON[@]}" tfr=linear trainer.max_time=00:00:03:00 trainer.val_check_interval=0.25)   # the lab's teacher forcing
run() {   # run NAME OVERRIDES...: one training run in the background, its output in $RUNS/NAME.log
  local name=$1; shift
  $PY -m cvae_video.train "$@" hydra.run.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1 &
}
run template "${TEMPLATE[@]}" model=template
run template_monotonic_adamw "${TEMPLATE[@]}" model=template kl=monotonic optim=adamw
for step in 1 20 40; do
  run "small_step$step" "${COMMON[@]}" experiment=demo trainer.max_epochs=8 data.train_frame_step=$step
done
$PY -m pytest -q -p no:cacheprovider tests/test_reliability.py -k "sigkill" > "$RUNS/resume_test.log" 2>&1 &
wait
echo "all runs done in $((SECONDS - START)) s (they shared the GPU)"
tail -3 "$RUNS/resume_test.log"

$PY -m bench.runs_summary "$RUNS"
} 2>&1 | tee "$OUT_DIR/gpu_learning_check.log"
tar czf "$OUT_DIR/runs.tgz" --exclude='*.ckpt' -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
