"""The fixed against the learned prior, and best-of-N against the mean of N samples, on a sweep over `model.prior`
and seeds (`python -m cvae_video.train -m experiment=door_prior model.prior=fixed,learned seed=1,2`).

    python -m bench.prior_comparison SWEEP_DIR [--samples 10]

Evaluates each run's last checkpoint with N samples once (into <run>/eval/, kept: a second call reads it), then
prints and writes SWEEP_DIR/priors.md: per run the mean of the N samples' PSNR, the best sample's, the latent's
active units and KL; per prior, by the sweep report's rule (`cvae_video/claims.py`), whether best-of-N is above the
mean by more than either's spread over seeds, and whether the posterior collapsed (no active unit at the end).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from cvae_video.claims import compare, fmt

VERDICT = {1: "yes", 0: "inconclusive", -1: "no (lower)"}


def evaluated(run: Path, samples: int) -> dict:
    """<run>/eval/metrics.json, made by `cvae_video.evaluate` on the run's last checkpoint when missing."""
    metrics = run / "eval" / "metrics.json"
    if not metrics.exists():
        command = [
            sys.executable,
            "-m",
            "cvae_video.evaluate",
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            f"eval.num_samples={samples}",
            f"hydra.run.dir={run / 'eval'}",
        ]
        subprocess.run(command, check=True)
    return json.loads(metrics.read_text())


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args(argv)
    runs = sorted(d for d in args.sweep.iterdir() if (d / "checkpoints" / "last.ckpt").exists())
    if not runs:
        sys.exit(f"{args.sweep}: no runs with checkpoints/last.ckpt")
    rows, by_prior = [], {}
    for run in runs:
        cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
        m = evaluated(run, args.samples)
        n, latent = m["best_of_n"]["n"], m["latent"]
        row = {
            "prior": cfg.model.prior,
            "seed": cfg.seed,
            "mean": m["psnr_mean"],
            "best": m["best_of_n"]["psnr_mean"],
            "per_sample": m["samples"]["psnr_mean_per_sample"],
            "active": latent["active_units"],
            "units": latent["units"],
            "kl": latent["kl"],
        }
        rows.append(row)
        by_prior.setdefault(row["prior"], []).append(row)
    lines = [
        f"# Priors: {args.sweep}",
        "",
        f"| prior | seed | PSNR, mean of {n} samples | best of {n} | best - mean | samples' PSNR | active units "
        "| KL a frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['prior']} | {r['seed']} | {r['mean']:.2f} | {r['best']:.2f} | {r['best'] - r['mean']:+.2f} | "
            f"{min(r['per_sample']):.2f} - {max(r['per_sample']):.2f} | {r['active']} of {r['units']} | "
            f"{r['kl']:.3g} |"
        )
    rule = "a difference counts where it is larger than either side's spread over seeds"
    lines += ["", f"By the sweep report's rule ({rule}):"]
    for prior, group in by_prior.items():
        means, bests = [r["mean"] for r in group], [r["best"] for r in group]
        collapsed = sum(r["active"] == 0 for r in group)
        lines.append(
            f"- {prior}: best of {n} {fmt(bests)} against the mean {fmt(means)} dB: above it? "
            f"{VERDICT[compare(bests, means)]}; collapsed (no active unit): {collapsed} of {len(group)} runs"
        )
    if {"fixed", "learned"} <= by_prior.keys():
        for key, name in (("mean", f"mean of {n}"), ("best", f"best of {n}")):
            learned, fixed = ([r[key] for r in by_prior[p]] for p in ("learned", "fixed"))
            lines.append(
                f"- learned against fixed, {name}: {fmt(learned)} against {fmt(fixed)} dB: higher? "
                f"{VERDICT[compare(learned, fixed)]}"
            )
    text = "\n".join(lines) + "\n"
    (args.sweep / "priors.md").write_text(text)
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
