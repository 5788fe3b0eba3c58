"""Figures of a training run, or of a sweep's runs overlaid, from what training logged.

    python -m cvae_video.plots RUN_OR_SWEEP_DIR [MORE_DIRS ...] [--labels L ...] [--out DIR] [--epochs E [E ...]]

A run dir holds `csv/**/metrics.csv` (Lightning's CSVLogger) and `val_psnr_per_frame.jsonl` (one line
per validation epoch). A sweep dir holds runs in subfolders `0/`, `1/`, ..., each with
`.hydra/overrides.yaml`; each run is labelled by the overrides that tell it apart (e.g. `kl=cyclical`).
Several dirs are overlaid in the same figures (a run dir is labelled by its folder name, or by `--labels`,
one per run in order), e.g. two designs' learning curves against minutes of training side by side.
Writes `loss.png`, `schedules.png`, `val_psnr.png`, `val_psnr_vs_minutes.png` and
`val_psnr_per_frame.png` to `--out` (default `<dir>/plots`). With `logger=wandb` training sends the same
curves to W&B itself (scalars per epoch and the per-frame PSNR as a table); `logger=[csv,wandb]` keeps the
CSV files these figures need.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from cvae_video.atomic import atomic_path  # noqa: E402
from cvae_video.errors import UserError, user_errors  # noqa: E402

LOSS_KEYS = {
    "train/loss_epoch": "loss = MSE + beta * KL",
    "train/mse_epoch": "MSE (sum over frames)",
    "train/kl_epoch": "KL",
}
SCHEDULE_KEYS = {
    "schedule/beta": "beta (KL weight)",
    "schedule/tfr": "teacher-forcing ratio",
    "schedule/lr": "learning rate",
}
MINUTES_KEY = "time/train_minutes"  # logged by callbacks.TrainingMinutes
PANELS_PER_ROW = 3
EPOCHS_SHOWN = 4  # per-frame curves drawn when --epochs is not given: evenly spaced, first and last included

Lines = dict[str, tuple[list, list]]  # label -> (x values, y values)


class Panel(NamedTuple):
    title: str
    lines: Lines
    ylabel: str = ""
    log_y: bool = False


def merge_identical(lines: Lines, tolerance: float = 0.005) -> Lines:
    """Lines that coincide (the same x; y apart by at most `tolerance` of the panel's y range at every point) drawn
    once, under their labels joined by " = ": a line hidden under another would leave a legend entry with nothing
    to see (best of N equals the mean when the samples agree)."""
    ys = [v for _, y in lines.values() for v in y if np.isfinite(v)]
    limit = tolerance * (max(ys) - min(ys)) if ys else 0.0
    merged: Lines = {}
    for label, (x, y) in lines.items():
        same = next(
            (
                k
                for k, (mx, my) in merged.items()
                if list(mx) == list(x) and np.allclose(my, y, rtol=0, atol=limit, equal_nan=True)
            ),
            None,
        )
        if same is None:
            merged[label] = (x, y)
        else:
            merged[f"{same} = {label}"] = merged.pop(same)
    return merged


def save_figure(path: Path, panels: list[Panel], xlabel: str) -> Path:
    """Panels side by side in one PNG, at most PANELS_PER_ROW a row; a legend under each panel that has more
    than one line."""
    rows, cols = -(-len(panels) // PANELS_PER_ROW), min(len(panels), PANELS_PER_ROW)
    fig, axes = plt.subplots(rows, cols, figsize=(max(7.0, 4.5 * cols), 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        lines = merge_identical(panel.lines)
        for label, (x, y) in lines.items():
            ax.plot(x, y, label=label, marker="." if len(x) < 30 else None, linewidth=1.2)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.log_y and any(v > 0 for _, y in panel.lines.values() for v in y):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(lines) > 1:  # below the axes: long rollouts leave no empty corner inside
            columns = 1 if max(map(len, lines)) > 45 else min(3, len(lines))  # a merged label takes a row
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=columns)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def epoch_metrics(run_dir: Path) -> dict[str, dict[int, float]]:
    """{key: {epoch: value}} from the run's CSVLogger files (all versions, in order; later values win).

    Rows without an epoch (the LR monitor logs by step) belong to the epoch of the next row that has one.
    """
    files = sorted(run_dir.glob("csv/**/metrics.csv"), key=lambda p: p.stat().st_mtime)
    values: dict[str, dict[int, float]] = defaultdict(dict)
    for file in files:
        with open(file, newline="") as f:
            rows = list(csv.DictReader(f))
        epochs, upcoming = [], None
        for row in reversed(rows):
            upcoming = int(float(row["epoch"])) if row.get("epoch") else upcoming
            epochs.append(upcoming)
        for row, epoch in zip(rows, reversed(epochs)):
            for key, text in row.items():
                if epoch is not None and text not in ("", None) and key not in ("epoch", "step"):
                    values[key][epoch] = float(text)
    return values


def psnr_curves(run_dir: Path) -> dict[int, list[float]]:
    """{epoch: validation PSNR of every predicted frame} from `val_psnr_per_frame.jsonl` (later lines win)."""
    path = run_dir / "val_psnr_per_frame.jsonl"
    if not path.exists():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["epoch"]: r["psnr"] for r in records}


def find_runs(folder: Path) -> dict[str, Path]:
    """{label: run dir}: the folder itself when it is a run, else its sweep runs labelled by their overrides."""
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist")
    if (folder / "csv").is_dir() or (folder / "val_psnr_per_frame.jsonl").exists():
        return {folder.name: folder}
    runs = sorted(
        (d for d in folder.iterdir() if (d / ".hydra" / "overrides.yaml").exists()),
        key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name),
    )
    if not runs:
        raise UserError(
            f"{folder}: neither a run dir (csv/, val_psnr_per_frame.jsonl) nor a sweep dir "
            "(subfolders 0/, 1/, ... with .hydra/overrides.yaml)"
        )
    overrides = {
        run: {o.split("=", 1)[0]: o for o in OmegaConf.load(run / ".hydra" / "overrides.yaml")} for run in runs
    }
    keys = sorted({k for o in overrides.values() for k in o})
    differing = [k for k in keys if len({o.get(k) for o in overrides.values()}) > 1]
    return {" ".join(overrides[run][k] for k in differing if k in overrides[run]) or run.name: run for run in runs}


def collect_runs(folders: list[Path], labels: list[str] | None = None) -> dict[str, Path]:
    """{label: run dir} over all `folders` (each a run or a sweep dir, see `find_runs`), relabelled by `labels`."""
    found = [(label, run) for folder in folders for label, run in find_runs(folder).items()]
    if labels is None:  # a run dir is labelled by its folder name; where two share it, by the path
        names = [label for label, _ in found]
        labels = [label if names.count(label) == 1 else str(run) for label, run in found]
    if len(labels) != len(found):
        raise UserError(
            f"--labels: {len(labels)} given for {len(found)} runs ({', '.join(str(run) for _, run in found)})"
        )
    if len(set(labels)) != len(labels):
        raise UserError(f"--labels: each run needs its own label, got {labels}")
    return {label: run for label, (_, run) in zip(labels, found)}


def pick_epochs(available: list[int], wanted: list[int] | None) -> list[int]:
    """The epochs whose per-frame curves are drawn: `wanted` where recorded, else up to EPOCHS_SHOWN spread out."""
    if wanted:
        return [e for e in wanted if e in available]
    if len(available) <= EPOCHS_SHOWN:
        return available
    step = (len(available) - 1) / (EPOCHS_SHOWN - 1)
    return sorted({available[round(i * step)] for i in range(EPOCHS_SHOWN)})


def per_epoch_lines(metrics: dict[str, dict[str, dict[int, float]]], key: str) -> Lines:
    """One line per run of `key` against the epoch; runs that never logged it are left out."""
    return {label: (sorted(m[key]), [m[key][e] for e in sorted(m[key])]) for label, m in metrics.items() if key in m}


def per_minute_lines(metrics: dict[str, dict[str, dict[int, float]]], key: str) -> Lines:
    """One line per run of `key` against `time/train_minutes` (epochs that logged both)."""
    lines = {}
    for label, m in metrics.items():
        epochs = sorted(set(m.get(key, {})) & set(m.get(MINUTES_KEY, {})))
        if epochs:
            lines[label] = ([m[MINUTES_KEY][e] for e in epochs], [m[key][e] for e in epochs])
    return lines


def plot_runs(runs: dict[str, Path], out: Path, epochs: list[int] | None = None) -> list[Path]:
    """All figures for `runs` ({label: run dir}) into `out`; returns the paths written.

    The per-epoch figures need the CSVLogger's files; a run logged to W&B alone has the per-frame one only.
    """
    metrics = {label: epoch_metrics(run) for label, run in runs.items()}
    written = []
    if any(metrics.values()):
        written += [
            save_figure(
                out / "loss.png",
                [Panel(t, per_epoch_lines(metrics, k), log_y=k != "train/loss_epoch") for k, t in LOSS_KEYS.items()],
                "epoch",
            ),
            save_figure(
                out / "schedules.png",
                [Panel(t, per_epoch_lines(metrics, k), log_y=k == "schedule/lr") for k, t in SCHEDULE_KEYS.items()],
                "epoch",
            ),
            save_figure(
                out / "val_psnr.png",
                [Panel("validation PSNR (mean over frames)", per_epoch_lines(metrics, "val/psnr"), "dB")],
                "epoch",
            ),
        ]
        against_time = per_minute_lines(metrics, "val/psnr")
        if against_time:
            written.append(
                save_figure(
                    out / "val_psnr_vs_minutes.png",
                    [Panel("validation PSNR (mean over frames)", against_time, "dB")],
                    "minutes of training",
                )
            )
    panels = []
    for label, run in runs.items():
        curves = psnr_curves(run)
        lines = {
            f"epoch {e}": (list(range(1, len(curves[e]) + 1)), curves[e]) for e in pick_epochs(sorted(curves), epochs)
        }
        if lines:
            panels.append(
                Panel(
                    f"{label}: validation PSNR per frame" if len(runs) > 1 else "validation PSNR per frame", lines, "dB"
                )
            )
    if panels:
        written.append(save_figure(out / "val_psnr_per_frame.png", panels, "predicted frame"))
    if not written:
        raise UserError(
            f"nothing to plot in {', '.join(map(str, runs.values()))}: no csv/**/metrics.csv "
            "(logger=csv) and no val_psnr_per_frame.jsonl (validation)"
        )
    return written


@user_errors
def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dirs",
        type=Path,
        nargs="+",
        metavar="dir",
        help="a run dir (outputs/<task>/runs/<time>) or a sweep dir; several are overlaid",
    )
    parser.add_argument("--labels", nargs="+", help="one legend label per run, in order")
    parser.add_argument("--out", type=Path, help="where the PNGs go (default: <first dir>/plots)")
    parser.add_argument("--epochs", type=int, nargs="+", help="epochs of the per-frame PSNR curves")
    args = parser.parse_args(argv)
    runs = collect_runs(args.dirs, args.labels)
    written = plot_runs(runs, args.out or args.dirs[0] / "plots", args.epochs)
    for path in written:
        print(f"figure: {path}")
    return written


if __name__ == "__main__":
    main()
