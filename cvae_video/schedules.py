"""Schedules of the KL weight beta and the teacher-forcing ratio.

Each is a pure function of the epoch (0-based; fractional where `callbacks.Schedule` applies it per
step) and its settings, so a resumed run gets exactly the values an uninterrupted run had. The config
groups `kl/` and `tfr/` pick a function and its settings (Hydra `_partial_`); `callbacks.Schedule`
applies it.
"""

from __future__ import annotations


def constant(epoch: float, value: float = 1.0) -> float:
    """The same value every epoch (`kl=none`: beta = 1; `tfr=off`: tfr = 0)."""
    return float(value)


def monotonic(epoch: float, max_epochs: int, ratio: float = 1.0) -> float:
    """Beta rises linearly from 0 to 1 over the first `ratio` of the `max_epochs` epochs, then stays 1."""
    return min(1.0, epoch / (ratio * max_epochs))


def cyclical(epoch: float, cycle: int, ratio: float = 1.0) -> float:
    """Fu et al. (NAACL 2019): the monotonic ramp restarts every `cycle` epochs.

    Within a cycle beta rises from 0 by 1 / (ratio * cycle) per epoch and is held at 1 once it gets
    there; with ratio 1 it reaches (cycle - 1) / cycle, as in the lab's `frange_cycle_linear`.
    """
    return monotonic(epoch % cycle, cycle, ratio)


def linear_decay(epoch: float, start: float, tfr_sde: int, tfr_d_step: float) -> float:
    """Teacher forcing (the lab): `start` until epoch `tfr_sde`, then `tfr_d_step` less per epoch, down to 0."""
    return max(0.0, start - tfr_d_step * max(0, epoch - tfr_sde))


def multiplicative_decay(epoch: float, start: float, tfr_sde: int, tfr_d_step: float) -> float:
    """The lab report's variant: each epoch subtracts `tfr_d_step * (epoch - tfr_sde)` from the current ratio.

    The report's update `tfr = max(tfr - d * (e - sde), 0)`, applied once per epoch, compounds: after
    n = epoch - tfr_sde epochs the ratio is start - d * n (n + 1) / 2, so it falls ever faster.
    """
    n = max(0, epoch - tfr_sde)
    return max(0.0, start - tfr_d_step * n * (n + 1) / 2)
