"""The lab report's claims, each checked on a sweep's arms by one rule: a difference between two arms counts where it
is larger than either arm's spread over seeds (max - min, at least 2 seeds each); otherwise the claim is
"inconclusive". `cvae_video.report` writes the verdicts into REPORT.md.
"""

from __future__ import annotations

import math
from statistics import mean
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cvae_video.report import Run

BASELINE = "baseline"
KL_ARMS = {BASELINE: "cyclical", "kl_none": "none", "kl_monotonic": "monotonic"}  # the sweep's KL annealing arms
ENDS = 100  # frames at each end of the rollout compared by the "PSNR falls along the rollout" claim


def values(runs: list[Run], metric) -> list[float]:
    """The finite values of `metric` (a FINAL key or a function of a run) over `runs`."""
    got = [metric(r) if callable(metric) else r.final[metric] for r in runs]
    return [v for v in got if math.isfinite(v)]


def spread(xs: list[float]) -> float:
    return max(xs) - min(xs) if xs else math.nan


def compare(a: list[float], b: list[float]) -> int:
    """+1 when a's mean is higher than b's by more than either's spread, -1 when lower, 0 when inconclusive
    (also when either has fewer than 2 values: no spread to tell a difference from noise)."""
    if len(a) < 2 or len(b) < 2:
        return 0
    diff = mean(a) - mean(b)
    return (diff > 0) - (diff < 0) if abs(diff) > max(spread(a), spread(b)) else 0


def fmt(xs: list[float], digits: int = 2) -> str:
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{mean(xs):.{digits}f} [{min(xs):.{digits}f}, {max(xs):.{digits}f}]"


def last_logged(run: Run, key: str) -> float:
    """`key` at the run's last logged epoch (NaN when never logged)."""
    logged = run.epochs.get(key, {})
    return logged[max(logged)] if logged else math.nan


def collapse(arms: dict[str, list[Run]]) -> tuple[str, str, str]:
    """The lab report's claim of no posterior collapse, by one rule: a run's posterior collapsed when no latent unit
    is active at its last validation (`val/active_units`; cvae_video/latent.py: Burda et al. 2016)."""
    claim = "There is no posterior collapse (under any KL annealing)"
    found = {arm: runs for arm, runs in arms.items() if arm in KL_ARMS}
    logged = {
        arm: [r for r in runs if math.isfinite(last_logged(r, "val/active_units"))] for arm, runs in found.items()
    }
    if not any(logged.values()):
        return claim, "not tested: no KL arm's runs log val/active_units", "-"
    parts, collapsed, total = [], 0, 0
    for arm, runs in logged.items():
        units = [int(last_logged(r, "val/active_units")) for r in runs]
        kls = [last_logged(r, "val/kl") for r in runs]
        collapsed, total = collapsed + units.count(0), total + len(units)
        parts.append(f"{arm} ({KL_ARMS[arm]}): active units {units}, KL a frame {fmt(kls, 3)}")
    word = "supported" if collapsed == 0 else "contradicted"
    return claim, f"{word}: {collapsed} of {total} runs collapsed (no active unit at the end); " + "; ".join(parts), "-"


def reads_previous_frame(config) -> bool:
    """Whether the sweep's model reads the previous frame (else teacher forcing cannot change it): the template
    always does; model=small only with the `previous` source."""
    return "previous" in config.model.get("sources", ["previous"])


def claims(arms: dict[str, list[Run]], reads_previous: bool = True) -> list[tuple[str, str, str]]:
    """(the lab report's claim, what this sweep shows, the figure it rests on), each by the module's rule."""
    psnr = {arm: values(runs, "val/psnr") for arm, runs in arms.items()}
    out = []

    def versus(
        claim: str,
        a: str,
        b: str,
        figure_name: str,
        metric="val/psnr",
        what="final val PSNR",
        higher_supports: bool = True,
    ) -> None:
        if a not in arms or b not in arms:
            return out.append((claim, f"not tested: the sweep has no `{a if a not in arms else b}` arm", "-"))
        xa, xb = values(arms[a], metric), values(arms[b], metric)
        verdict = compare(xa, xb)
        word = {
            0: "inconclusive",
            1: "supported" if higher_supports else "contradicted",
            -1: "contradicted" if higher_supports else "supported",
        }[verdict]
        out.append((claim, f"{word}: {what} {a} {fmt(xa, 3)} vs {b} {fmt(xb, 3)}", f"{figure_name}.png"))

    teacher_forcing = "Teacher forcing gives worse results than none"
    if reads_previous:
        versus(teacher_forcing, BASELINE, "tfr_linear", "teacher_forcing")
    else:
        out.append(
            (
                teacher_forcing,
                "not tested: this sweep's model reads no previous frame, so teacher forcing cannot change it",
                "teacher_forcing.png",
            )
        )
    versus("No KL annealing gives the best PSNR (vs monotonic)", "kl_none", "kl_monotonic", "kl_annealing")
    versus(
        "Cyclical KL annealing gives the worst PSNR (vs none)",
        BASELINE,
        "kl_none",
        "kl_annealing",
        higher_supports=False,
    )
    versus(
        "AdamW's training loss is smoother than Adam's",
        "adamw",
        BASELINE,
        "optimizer",
        metric=lambda r: r.roughness,
        what="roughness of the log loss",
        higher_supports=False,
    )
    versus("lr 1e-4 (the report's) gives better PSNR than the lab's 1e-3", "lr_low", BASELINE, "learning_rate")
    out.append(collapse(arms))
    if BASELINE in arms:
        runs = arms[BASELINE]
        diverged = [r for r in runs if r.status.get("status") == "diverged"]
        word = "supported" if diverged else "contradicted"
        where = ", ".join(f"seed {r.seed} at step {r.status.get('step')}" for r in diverged)
        out.append(
            (
                "lr 1e-3 (the lab's) diverges",
                f"{word}: {len(diverged)} of {len(runs)} baseline runs diverged{': ' + where if where else ''}",
                "the table's baseline row",
            )
        )
    best = max((a for a in psnr if psnr[a]), key=lambda a: mean(psnr[a]), default=None)
    if best is not None:
        word = "supported" if min(psnr[best]) > 32 else "contradicted"
        out.append(
            (
                "Validation PSNR above 32 dB",
                f"{word} at this sweep's size: best arm {best} {fmt(psnr[best])} dB",
                "every figure",
            )
        )
    drops = [
        mean(r.per_frame[:ENDS]) - mean(r.per_frame[-ENDS:])
        for rs in arms.values()
        for r in rs
        if len(r.per_frame) >= 2 * ENDS and r.status.get("status") == "completed"
    ]
    if drops:
        word = "supported" if min(drops) > 0 else "contradicted" if max(drops) < 0 else "inconclusive"
        out.append(
            (
                "PSNR falls along the rollout",
                f"{word}: first {ENDS} frames minus last {ENDS}, per run: {fmt(drops)} dB over {len(drops)} runs",
                "every figure's last panel",
            )
        )
    return out
