#!/usr/bin/env bash
# The benchmark at the lab's sizes on one CUDA GPU, in under 5 minutes:
#
#     bash bench/gpu_check.sh [OUT_DIR]      # OUT_DIR: $1, else $OUT, else outputs/bench_gpu
#
# Writes OUT_DIR/gpu_check.log, OUT_DIR/bench.json (training rows in bf16-mixed, the trainer=gpu setting,
# against the reference loop in fp32; rollouts in float32, as CVAEModule.rollout) and OUT_DIR/fp32/bench.json (the
# rollouts through torch.compile). Needs no network and no
# install: it picks the first python whose torch sees CUDA (the GPU image's python3 before the project's
# .venv, a CPU build), and runs the package from this checkout through PYTHONPATH. Lightning is only needed
# for the Trainer.fit row, which is skipped (and said so) without it.
# The reference loop is read from ../shared/reference/seed_model.py or shared/reference/seed_model.py (or
# $REFERENCE_MODEL); without it the reference rows are skipped.
# BENCH_DEVICE=cpu BENCH_TINY=1: the same steps at tiny sizes on CPU (tests/test_bench.py runs this);
# BENCH_LIMIT_S: the time limit of the main bench run (default 165 s; the compiled run gets 2/3 of it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-outputs/bench_gpu}}
mkdir -p "$OUT_DIR/fp32"
DEVICE=${BENCH_DEVICE:-cuda}
START=$SECONDS
{

echo "== python"
PY=
for candidate in python3 /opt/torch/.venv/bin/python3 .venv/bin/python; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  cuda=$("$candidate" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null) || cuda="no torch"
  echo "$candidate ($(command -v "$candidate")): torch.cuda.is_available() = $cuda"
  if [ "$cuda" = True ] || { [ "$DEVICE" = cpu ] && [ "$cuda" = False ]; }; then PY=$candidate; break; fi
done
if [ -z "$PY" ]; then echo "error: no python here has a torch that sees a CUDA device"; exit 1; fi
"$PY" - <<'EOF'
import importlib.metadata as md, sys, torch
print(f"using {sys.executable} (Python {sys.version.split()[0]}), torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print("GPU", torch.cuda.get_device_name(0))
for name in ("lightning", "lightning-utilities", "pytorch-lightning", "torchmetrics", "hydra-core", "omegaconf"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} missing")
EOF
if ! "$PY" -c 'import lightning, torchmetrics' 2>/dev/null; then
  echo "Lightning or torchmetrics missing: trying pip without touching torch (there may be no network)"
  timeout 90 "$PY" -m pip install -q --no-deps --retries 0 --timeout 10 lightning lightning-utilities torchmetrics \
    || echo "pip install failed: the Trainer.fit row will be skipped"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,driver_version --format=csv

export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True   # the reference loop at batch 32 holds ~58 GB in fp32
REFERENCE_ARGS=()
for f in "${REFERENCE_MODEL:-}" ../shared/reference/seed_model.py shared/reference/seed_model.py; do
  if [ -n "$f" ] && [ -f "$f" ]; then REFERENCE_ARGS=(--reference-model "$f"); echo "reference loop: $f"; break; fi
done
[ ${#REFERENCE_ARGS[@]} -gt 0 ] || echo "seed_model.py not found: the reference rows will be skipped"

if [ "${BENCH_TINY:-0}" = 1 ]; then
  MAIN=(--batches 1 2 --frames 3 --frame-size 8 16 --steps 1 --warmup 1 --chunk-sweep 0
        --rollout-frames 4 --rollout-batches 1 2 --rollout-reps 1 --epoch-clips 8)
  FP32=(--batches --frame-size 8 16 --rollout-frames 4 --rollout-batches --rollout-reps 1 --compiled-rollouts 2)
else
  # the lab's sizes: clips of 16 frames at batch 32 and 2 (the lab's default), 32 first so that the time limit
  # never cuts the rows the epoch target needs; NCHW against NHWC at 32; an epoch of 1,463 clips; 630-frame
  # rollouts of one sequence and of all 5 test sequences (reference, eager, CUDA graph, CUDA graph with bf16 weights)
  MAIN=(--batches 32 2 --frames 16 --steps 4 --warmup 2 --chunk-sweep 0
        --rollout-frames 630 --rollout-batches 1 5 --rollout-reps 1 --epoch-clips 1463)
  # the rollouts through torch.compile (reduce-overhead), at batch 1 and 5
  FP32=(--batches --rollout-frames 630 --rollout-batches --rollout-reps 1 --compiled-rollouts 1 5)
fi
LIMIT=${BENCH_LIMIT_S:-165}

echo "== bench, bf16-mixed ($((SECONDS - START)) s so far; limit $LIMIT s)"
timeout "$LIMIT" "$PY" -m bench.steps --device "$DEVICE" --precision bf16-mixed "${MAIN[@]}" "${REFERENCE_ARGS[@]}" \
  --out "$OUT_DIR"
status=$?
echo "== bench, compiled rollouts ($((SECONDS - START)) s so far; limit $((LIMIT * 2 / 3)) s)"
timeout "$((LIMIT * 2 / 3))" "$PY" -m bench.steps --device "$DEVICE" --precision 32-true "${FP32[@]}" --no-reference \
  --no-lightning --out "$OUT_DIR/fp32"
"$PY" - "$OUT_DIR" <<'EOF'
import json, sys
from pathlib import Path
for path in (Path(sys.argv[1]) / "bench.json", Path(sys.argv[1]) / "fp32" / "bench.json"):
    if not path.is_file():
        print(f"{path}: missing")
        continue
    result = json.loads(path.read_text())
    print(f"{path} ({result['env']['device']}, {result['env']['precision']}, {result['env']['layout']}):")
    largest = max(result["settings"]["batches"] or [0])
    for row in result["rows"]:
        if row["kind"] == "rollout" or row["batch"] == largest:
            print(f"  {row['kind']:8s} {row['name']:28s} batch {row['batch']:3d}  {row['seconds']:.4f} s")
    for name, value in result.get("epoch_estimate", {}).items():
        print(f"  epoch estimate {name}: {value:.1f}" if isinstance(value, float) else f"  epoch estimate {name}: {value}")
    for skip in result["skipped"]:
        print(f"  skipped {skip['row']}: {skip['why']}")
EOF
echo "== done in $((SECONDS - START)) s; bf16 bench exit status $status (124: cut at its time limit; bench.json keeps the rows done)"
exit "$status"
} 2>&1 | tee "$OUT_DIR/gpu_check.log"
exit "${PIPESTATUS[0]}"
