"""The lab report from one sweep: figures per comparison and REPORT.md, with the lab report's claims checked.

    python -m cvae_video.report SWEEP_DIR [--out DIR]      # default --out: SWEEP_DIR/report

SWEEP_DIR holds the runs of `python -m cvae_video.train -m experiment=lab_comparison` (subfolders with
`.hydra/`, `csv/`, `val_psnr_per_frame.jsonl`, `run_status.json`). Runs are grouped into arms by
`report.arm` of their config (conf/arm/), else by their overrides other than `seed`; the seeds of an arm
give its spread. Each comparison (`report.comparison` of an arm) gets one figure of loss, KL, beta, tfr and
validation PSNR per epoch and the final models' PSNR per frame, each line an arm's mean over its seeds.

Each claim's verdict comes from one rule (`cvae_video/claims.py`): a difference between arms counts where it is
larger than either arm's spread over seeds; otherwise the claim is "inconclusive".
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from omegaconf import OmegaConf

from cvae_video.atomic import atomic_open
from cvae_video.claims import BASELINE, claims, fmt, reads_previous_frame, values
from cvae_video.data.synthetic import read_ceiling
from cvae_video.errors import UserError, user_errors
from cvae_video.plots import Panel, epoch_metrics, psnr_curves, save_figure

CURVES = {
    "train/loss_epoch": ("training loss", True),
    "train/kl_epoch": ("KL", True),
    "schedule/beta": ("beta", False),
    "schedule/tfr": ("teacher-forcing ratio", False),
    "val/psnr": ("validation PSNR (dB)", False),
}
FINAL = {"val/psnr": "val PSNR (dB)", "val/ssim": "val SSIM", "val/kaggle_psnr": "Kaggle-style PSNR (dB)"}
CONF = Path(__file__).resolve().parent / "conf"


@dataclass
class Run:
    path: Path
    arm: str
    comparison: str | None
    seed: int
    status: dict
    epochs: dict[str, dict[int, float]]
    per_frame: list[float]
    losses: list[float] = field(default_factory=list)  # train/loss_step, in logged order

    @property
    def final(self) -> dict[str, float]:
        """The last validation's value of each FINAL metric (NaN for a run that diverged or failed; a run that
        was stopped gives its last validation, and the table says at which epoch)."""
        ok = self.status.get("status") not in ("diverged", "failed")
        return {k: (v[max(v)] if ok and v else math.nan) for k in FINAL for v in [self.epochs.get(k, {})]}

    @property
    def ended(self) -> str:
        status = self.status.get("status", "unfinished")
        if status == "diverged":
            return f"diverged (step {self.status.get('step')})"
        if status == "unfinished":
            last = max(self.epochs.get("val/psnr", {}), default=None)
            return f"unfinished (last validation: epoch {last})"
        return status

    @property
    def roughness(self) -> float:
        """How jagged the training loss is: the standard deviation of the step-to-step change of log loss."""
        logs = [math.log(v) for v in self.losses if v > 0 and math.isfinite(v)]
        steps = [b - a for a, b in zip(logs, logs[1:])]
        if len(steps) < 2:
            return math.nan
        m = mean(steps)
        return math.sqrt(sum((s - m) ** 2 for s in steps) / (len(steps) - 1))


def read_run(path: Path) -> Run:
    cfg = OmegaConf.load(path / ".hydra" / "config.yaml")
    overrides = [o for o in OmegaConf.load(path / ".hydra" / "overrides.yaml") if not o.startswith("seed=")]
    arm = OmegaConf.select(cfg, "report.arm") or " ".join(overrides) or BASELINE
    status_file = path / "run_status.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {"status": "unfinished"}
    curves = psnr_curves(path)
    losses = []
    for file in sorted(path.glob("csv/**/metrics.csv")):
        with open(file, newline="") as f:
            losses += [float(r["train/loss_step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]
    return Run(
        path,
        arm,
        OmegaConf.select(cfg, "report.comparison"),
        int(cfg.seed),
        status,
        epoch_metrics(path),
        curves[max(curves)] if curves else [],
        losses,
    )


def read_sweep(sweep: Path) -> dict[str, list[Run]]:
    """{arm: its runs}, the baseline first."""
    if not sweep.is_dir():
        raise UserError(f"{sweep} does not exist")
    runs = [read_run(d) for d in sorted(sweep.iterdir()) if (d / ".hydra" / "config.yaml").exists()]
    if not runs:
        raise UserError(
            f"{sweep}: no runs (subfolders with .hydra/config.yaml); give the sweep dir of a "
            f"`python -m cvae_video.train -m ...` run"
        )
    arms: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: (r.arm != BASELINE, r.arm, r.seed)):
        arms.setdefault(run.arm, []).append(run)
    return arms


def comparisons(arms: dict[str, list[Run]]) -> dict[str, list[str]]:
    """{comparison: its arms}, the baseline first in each."""
    groups: dict[str, list[str]] = {}
    for arm, runs in arms.items():
        if runs[0].comparison:
            groups.setdefault(runs[0].comparison, [BASELINE] if BASELINE in arms else []).append(arm)
    return groups


def mean_line(runs: list[Run], key: str) -> tuple[list, list]:
    epochs = sorted({e for r in runs for e in r.epochs.get(key, {})})
    ys = [mean([r.epochs[key][e] for r in runs if e in r.epochs.get(key, {})]) for e in epochs]
    return epochs, ys


def figure(name: str, arms: dict[str, list[Run]], members: list[str], out: Path) -> Path:
    panels = [
        Panel(title, {arm: mean_line(arms[arm], key) for arm in members}, log_y=log)
        for key, (title, log) in CURVES.items()
    ]
    frames = {}
    for arm in members:
        curves = [r.per_frame for r in arms[arm] if r.per_frame]
        if curves:
            n = min(map(len, curves))
            frames[arm] = (list(range(1, n + 1)), [mean(c[t] for c in curves) for t in range(n)])
    panels.append(Panel("final PSNR per frame (dB)", frames))
    return save_figure(out / f"{name.replace(' ', '_')}.png", panels, "epoch (last panel: frame)")


def size(config) -> str:
    """The sweep's size in one paragraph, from the baseline's config: epochs, batches, model, and the schedules and
    lr against the lab's (conf/lr/multistep.yaml)."""
    model = config.model
    lab_lr = OmegaConf.load(CONF / "lr" / "multistep.yaml")
    lab_milestones = list(lab_lr.scheduler.milestones)
    milestones = OmegaConf.select(config, "lr.scheduler.milestones")
    batches = config.trainer.limit_train_batches
    return (
        f"`{OmegaConf.select(config, 'task_name')}`: {config.trainer.max_epochs} epochs of {batches or 'all'} "
        f"batches (batch {config.data.batch_size}); model `{model._target_.rsplit('.', 1)[-1]}` "
        f"{dict((k, v) for k, v in model.items() if k.endswith('_dim'))}"
        + (f", sources {list(model.sources)}" if "sources" in model else "")
        + ". "
        "The lab's schedules are kept in epochs (KL cycles, teacher forcing's decay), so short epochs scale them: "
        f"an epoch here is {batches or 'a full epoch of'} batches, where the course's is 731. "
        + (
            f"The lr milestones are epochs {list(milestones)} (the lab's: {lab_milestones}; x0.1 at each): at "
            "the lab's, a short run would spend all but its first steps at the lowest lr."
            if milestones is not None and list(milestones) != lab_milestones
            else "The lr schedule is the arm's own."
        )
        + (
            f" Every arm's base lr is {config.lr.base:g} unless the arm sets its own (the lab's: {lab_lr.base:g})."
            if config.lr.base != lab_lr.base
            else ""
        )
    )


def reference_points(runs: list[Run]) -> str:
    """Copy-first-frame's validation PSNR (logged beside every validation) and the data's ceiling (its clean render;
    the course's data has none), for the data the runs read (`data_root` in their run_status.json)."""
    copy_first = [
        r.epochs["val/psnr"][e] - r.epochs["val/psnr_over_copy_first"][e]
        for r in runs
        for e in [max(r.epochs.get("val/psnr_over_copy_first", {}), default=None)]
        if e is not None and e in r.epochs.get("val/psnr", {})
    ]
    line = f"copy-first-frame {mean(copy_first):.2f} dB" if copy_first else "copy-first-frame: not logged"
    roots = {r.status["data_root"] for r in runs if "data_root" in r.status}
    if len(roots) != 1:
        return f"{line}; the ceiling: unknown (the runs record {len(roots)} data folders in run_status.json)"
    return f"{line}; {read_ceiling(Path(roots.pop()), 'val')[1]}"


def write_report(sweep: Path, out: Path) -> tuple[Path, str]:
    """REPORT.md and the figures under `out`; returns its path and the reference points' line."""
    arms = read_sweep(sweep)
    config = OmegaConf.load(arms.get(BASELINE, next(iter(arms.values())))[0].path / ".hydra" / "config.yaml")
    out.mkdir(parents=True, exist_ok=True)
    groups = comparisons(arms)
    figures = {name: figure(name, arms, members, out) for name, members in groups.items()}
    lines = [
        f"# Lab comparisons: {sweep}",
        "",
        "Each arm changes one thing against the baseline (the defaults: the lab's, with the README's "
        "deviations); values are the last validation of each run, as mean [min, max] over seeds.",
        "",
        "| arm | runs (seeds) | ended | " + " | ".join(FINAL.values()) + " | wall time (min) |",
        "|---" * (4 + len(FINAL)) + "|",
    ]
    for arm, runs in arms.items():
        ended = ", ".join(sorted({r.ended for r in runs}))
        walls = [r.status["wall_seconds"] / 60 for r in runs if "wall_seconds" in r.status]
        lines.append(
            f"| {arm} | {len(runs)} ({', '.join(str(r.seed) for r in runs)}) | {ended} | "
            + " | ".join(fmt(values(runs, k), 3 if k == "val/ssim" else 2) for k in FINAL)
            + f" | {fmt(walls, 1)} |"
        )
    references = reference_points(arms.get(BASELINE, next(iter(arms.values()))))
    lines += [
        "",
        f"On the same validation data: {references}.",
        "",
        "## The lab report's claims",
        "",
        "Rule: a difference counts where it is larger than either arm's spread over seeds (max - min, "
        "at least 2 seeds each); else inconclusive.",
        "",
        "| claim | this sweep | figure |",
        "|---|---|---|",
    ]
    lines += [f"| {c} | {v} | {f} |" for c, v, f in claims(arms, reads_previous_frame(config))]
    lines += ["", "## Figures", ""] + [
        f"- {name}: `{path.name}` (arms: {', '.join(groups[name])})" for name, path in figures.items()
    ]
    lines += ["", "## Size", "", size(config)]
    path = out / "REPORT.md"
    with atomic_open(path) as f:
        f.write("\n".join(lines) + "\n")
    return path, references


@user_errors
def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="the sweep dir (outputs/<task>/multiruns/<date_time>)")
    parser.add_argument("--out", type=Path, help="where REPORT.md and the figures go (default: SWEEP/report)")
    args = parser.parse_args(argv)
    path, references = write_report(args.sweep, args.out or args.sweep / "report")
    print(f"on the same validation data: {references}")
    print(f"report: {path}")
    return path


if __name__ == "__main__":
    main()
