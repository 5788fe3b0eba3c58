import pytest

from cvae_video import schedules


def test_constant():
    assert [schedules.constant(e, value=1.0) for e in (0, 5, 99)] == [1.0, 1.0, 1.0]


def test_monotonic_rises_over_ratio_of_epochs_then_holds():
    beta = [schedules.monotonic(e, max_epochs=10, ratio=0.5) for e in range(10)]
    assert beta[:6] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert beta[6:] == [1.0] * 4


def test_cyclical_restarts_every_cycle():
    beta = [schedules.cyclical(e, cycle=10, ratio=1.0) for e in range(25)]
    assert beta[0] == 0.0 and beta[9] == pytest.approx(0.9)  # the lab's frange_cycle_linear, ratio 1
    assert beta[10] == 0.0 and beta[15] == pytest.approx(0.5) and beta[20] == 0.0
    half = [schedules.cyclical(e, cycle=4, ratio=0.5) for e in range(8)]
    assert half == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0])


def test_linear_decay_holds_until_sde_then_falls_to_zero():
    tfr = [schedules.linear_decay(e, start=1.0, tfr_sde=10, tfr_d_step=0.1) for e in range(25)]
    assert tfr[:11] == [1.0] * 11
    assert tfr[11] == pytest.approx(0.9) and tfr[15] == pytest.approx(0.5)
    assert tfr[20:] == [0.0] * 5


def test_multiplicative_decay_is_the_reports_compounding_update():
    start, sde, d = 1.0, 2, 0.05
    tfr, expected = start, []
    for epoch in range(12):  # the report's recurrence, applied once per epoch
        if epoch >= sde:
            tfr = max(tfr - d * (epoch - sde), 0.0)
        expected.append(tfr)
    got = [schedules.multiplicative_decay(e, start=start, tfr_sde=sde, tfr_d_step=d) for e in range(12)]
    assert got == pytest.approx(expected)
    assert got[-1] == 0.0
