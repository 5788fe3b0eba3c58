"""Print each training run's validation curve (and its evaluation, where `<run>/eval/metrics.json` exists) under a
folder of runs, on a GPU or a CPU: the last step of bench/gpu_session.sh, bench/gpu_learning_check.sh and
bench/demo_pair.sh.

    python -m bench.runs_summary RUNS_DIR
"""

import csv
import json
import sys
from pathlib import Path


def main(runs_dir: str) -> None:
    for run in sorted(p for p in Path(runs_dir).iterdir() if p.is_dir()):
        files = sorted(run.glob("csv/version_*/metrics.csv"))
        if not files:
            print(f"{run.name}: no metrics (see {run.name}.log)")
            continue
        rows = list(csv.DictReader(files[-1].open()))
        vals = [
            (int(r["step"]), float(r["val/psnr"]), float(r["val/psnr_over_copy_first"]))
            for r in rows
            if r.get("val/psnr")
        ]
        betas = {int(r["epoch"]): float(r["schedule/beta"]) for r in rows if r.get("schedule/beta")}
        kls = [(int(r["step"]), float(r["train/kl_step"])) for r in rows if r.get("train/kl_step")]
        print(f"{run.name}: beta per epoch (its last value) {betas}")
        print("   val PSNR at step: " + "  ".join(f"{s}: {v:.2f} ({d:+.2f})" for s, v, d in vals))
        print("   train/kl at step: " + "  ".join(f"{s}: {k:.4g}" for s, k in kls[:: max(1, len(kls) // 8)]))
        metrics = run / "eval" / "metrics.json"
        if metrics.exists():
            m = json.loads(metrics.read_text())
            s, b, c = m["samples"], m["best_of_n"], m["baselines"]["copy_first"]
            per_sample = [round(v, 2) for v in s["psnr_mean_per_sample"]]
            print(
                f"   evaluate ({Path(m['checkpoint']).name}, {s['n']} samples): PSNR {m['psnr_mean']:.2f} "
                f"(per sample {per_sample}, std {s['psnr_std_over_samples']:.2f}), "
                f"best-of-{b['n']} {b['psnr_mean']:.2f}, SSIM {m['ssim_mean']:.3f} "
                f"(std {s['ssim_std_over_samples']:.3f}), "
                f"Kaggle-style {m['kaggle_psnr']:.2f}; copy-first {c['psnr_mean']:.2f} / SSIM {c['ssim_mean']:.3f}"
            )


if __name__ == "__main__":
    main(sys.argv[1])
