#!/usr/bin/env bash
# The template's GPU checks and the GPU sweep in one call on one CUDA GPU (~8 minutes), all runs side by side:
#
#     bash bench/gpu_session.sh [OUT_DIR]     # OUT_DIR: $1, else $OUT, else outputs/gpu_session
#
#   the GPU sweep                  bench/gpu_sweep.sh (experiment=lab_comparison_gpu, 14 runs at once), its report
#   the template, 3 minutes each   trainer=gpu (bf16-mixed), batch 2, the defaults (no teacher forcing) but for what
#                                  is named: beta per epoch (the lab's) and per step, beta per step under
#                                  kl=monotonic optim=adamw and with model.prior=learned
#   then evaluate on each template run's best checkpoint (eval.num_samples=5: mean, best-of-5, SSIM, spread).
# Writes OUT_DIR/session.log (every template run's validation curve and evaluation) and OUT_DIR/results.tgz (the
# sweep's report and logs, the template runs' metrics and evaluations; no checkpoints). Wheels: see gpu_sweep.sh.
# SWEEP=0: the template runs alone on the GPU. GPU_SESSION_TINY=1: the same flow at tiny sizes on CPU (a check of
# this script, not a measurement).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-outputs/gpu_session}}
WORK=${WORK_DIR:-/tmp/gpu_session}
rm -rf "$WORK"; mkdir -p "$OUT_DIR" "$WORK/runs"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=python3
if [ -n "${GPU_SESSION_TINY:-}" ]; then
  PY=${PY_TINY:-.venv/bin/python}
  TRAINER=(trainer=cpu data.partial=0.01 trainer.max_time=00:00:00:40 trainer.val_check_interval=0.5 data.val_vi_len=40)
  SWEEP_CMD=(true)
else
  TRAINER=(trainer=gpu trainer.max_time=00:00:03:00 trainer.val_check_interval=0.1)
  SWEEP_CMD=(env SWEEP_TIMEOUT=${SWEEP_TIMEOUT:-420} SWEEP_DIR="$WORK/sweep_runs" bash bench/gpu_sweep.sh "$WORK/sweep")
fi
[ "${SWEEP:-1}" = 0 ] && SWEEP_CMD=(true)
{
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
START=$SECONDS
$PY -m cvae_video.prepare_data > /dev/null || exit 1   # the default set, made once before the runs start
echo "data ready in $((SECONDS - START)) s"
"${SWEEP_CMD[@]}" > "$WORK/sweep.out" 2>&1 &
SWEEP_PID=$!

COMMON=("${TRAINER[@]}" trainer.enable_progress_bar=false "~callbacks.progress_bar" trainer.enable_model_summary=false)
train() {   # train NAME OVERRIDES...: one template run, then evaluate on its best checkpoint
  local name=$1; shift
  $PY -m cvae_video.train "${COMMON[@]}" "$@" hydra.run.dir="$WORK/runs/$name" > "$WORK/runs/$name.log" 2>&1
  local best
  best=$(ls "$WORK/runs/$name"/checkpoints/best-*.ckpt 2>/dev/null | tail -1)
  [ -n "$best" ] || { echo "$name: no best checkpoint" >> "$WORK/runs/$name.log"; return; }
  $PY -m cvae_video.evaluate ckpt_path="$best" eval.num_samples=5 ${GPU_SESSION_TINY:+data.partial=0.01 data.val_vi_len=40} \
      hydra.run.dir="$WORK/runs/$name/eval" > "$WORK/runs/$name.eval.log" 2>&1
}
EPOCH=callbacks.beta.per_step=false STEP=callbacks.beta.per_step=true
train template_beta_per_epoch model=template $EPOCH &
train template_beta_per_step model=template $STEP &
train template_monotonic_adamw_per_step model=template kl=monotonic optim=adamw $STEP &
train template_learned_prior_per_step model=template model.prior=learned $STEP &
wait $(jobs -p | grep -v "^$SWEEP_PID$")
echo "template runs and evaluations done at $((SECONDS - START)) s (sweep beside them: ${SWEEP:-1})"

$PY -m bench.runs_summary "$WORK/runs"
wait "$SWEEP_PID"
cat "$WORK/sweep/gpu_sweep.log" 2>/dev/null
cat "$WORK/sweep/report/REPORT.md" 2>/dev/null
echo "session done at $((SECONDS - START)) s"
} > "$OUT_DIR/session.log" 2>&1
cat "$OUT_DIR/session.log"
tar czf "$OUT_DIR/results.tgz" --exclude='*.ckpt' --exclude='*.gif' -C "$WORK" . 2>/dev/null
