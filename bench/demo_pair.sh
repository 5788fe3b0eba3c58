#!/usr/bin/env bash
# Two runs of experiment=demo's recipe (model=small unless named; 5 short epochs of batches of 8) side by side on
# 2 CPU cores, one thread each, that differ by the overrides given; then evaluate on each run's best checkpoint
# (by val/psnr) with eval.num_samples=5: mean PSNR, best-of-5, SSIM, the spread between samples. ~12 minutes.
#
#     bash bench/demo_pair.sh OUT_DIR NAME_A "OVERRIDES_A" NAME_B "OVERRIDES_B"
#
# The comparisons of docs/experiments.md made with it (2026-11-27, with epochs of 28 batches: 140 steps):
#   the learned prior, at SVG-LP's beta (a constant 1e-4), per seed S:
#     bash bench/demo_pair.sh outputs/priors fixed_seedS "seed=S kl.value=1e-4 trainer.limit_train_batches=28" \
#         learned_seedS "seed=S kl.value=1e-4 model.prior=learned trainer.limit_train_batches=28"
#   reading the previous frame ("model=small"):
#     bash bench/demo_pair.sh outputs/previous small "trainer.limit_train_batches=28" small_previous \
#         "model=small_previous data.train_frame_step=1 tfr=off trainer.limit_train_batches=28"
#     bash bench/demo_pair.sh outputs/previous_tf small_previous_step40 \
#         "model=small_previous trainer.limit_train_batches=28" \
#         small_previous_step1 "model=small_previous data.train_frame_step=1 trainer.limit_train_batches=28"
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || { echo "usage: bash bench/demo_pair.sh OUT_DIR NAME_A OVERRIDES_A NAME_B OVERRIDES_B" >&2; exit 2; }
OUT_DIR=$1
PY=${PY:-.venv/bin/python}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p "$OUT_DIR"
$PY -m cvae_video.prepare_data > /dev/null || exit 1   # the default set, made once before the runs start

run() {   # run NAME "OVERRIDES": one training run, then evaluate on its best checkpoint
  local name=$1 best
  rm -rf "${OUT_DIR:?}/$name"
  # shellcheck disable=SC2086 (the overrides are words)
  $PY -m cvae_video.train experiment=demo threads=1 trainer.enable_progress_bar=false "~callbacks.progress_bar" \
      $2 hydra.run.dir="$OUT_DIR/$name" > "$OUT_DIR/$name.log" 2>&1
  best=$(ls "$OUT_DIR/$name"/checkpoints/best-*.ckpt 2>/dev/null | tail -1)
  [ -n "$best" ] || { echo "$name: no best checkpoint" >> "$OUT_DIR/$name.log"; return; }
  $PY -m cvae_video.evaluate ckpt_path="$best" eval.num_samples=5 hydra.run.dir="$OUT_DIR/$name/eval" \
      > "$OUT_DIR/$name.eval.log" 2>&1
}
START=$SECONDS
run "$2" "$3" &
run "$4" "$5" &
wait
echo "$2 and $4 done in $((SECONDS - START)) s"
$PY -m bench.runs_summary "$OUT_DIR" | tee "$OUT_DIR/summary.txt"
