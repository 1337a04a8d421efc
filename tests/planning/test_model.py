"""The attention-cycle model recovers a known cycle from a constructed history."""

from __future__ import annotations

import numpy as np
import pytest

from dropline.planning.model import (
    RecoveryCurve,
    SeriesFit,
    fit_cycle,
    fit_recovery,
    fit_series,
    series_curve,
)

GAPS = [21, 35, 14, 49, 28, 63, 18, 42, 30, 56, 24]
TRUTH = RecoveryCurve(peak=400.0, tau_recover=12.0, tau_fade=90.0)


def _history(seed: int, *, baseline=8.0, rise=2.0, decay=5.0):
    days = np.cumsum([20, *GAPS]).astype(float)
    bumps = [TRUTH.bump(30), *(TRUTH.bump(g) for g in GAPS)]
    mean = series_curve(SeriesFit(baseline, rise, decay, tuple(bumps)), days, int(days[-1]) + 40)
    return np.random.default_rng(seed).poisson(mean), days


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fit_recovers_a_known_decay_half_life_within_ten_percent(seed):
    counts, days = _history(seed)

    fit = fit_series(counts, days)

    assert fit.half_life_decay == pytest.approx(5.0, rel=0.10)
    assert fit.half_life_rise == pytest.approx(2.0, rel=0.15)
    assert fit.baseline == pytest.approx(8.0, rel=0.25)


def test_a_slower_decay_is_measured_as_slower():
    fast = fit_series(*_history(4, decay=3.0))
    slow = fit_series(*_history(4, decay=9.0))

    assert fast.half_life_decay == pytest.approx(3.0, rel=0.1)
    assert slow.half_life_decay == pytest.approx(9.0, rel=0.1)


def test_the_recovery_curve_and_best_gap_are_recovered_with_intervals_that_cover_them():
    counts, days = _history(5)

    model = fit_cycle(counts, days, bootstrap=30, seed=1)

    # Stated tolerance: best gap within 20 % and inside its 90 % interval; the half-life's
    # interval covers the truth.
    assert model.best_gap_days.estimate == pytest.approx(TRUTH.best_gap_days, rel=0.2)
    assert model.best_gap_days.low <= TRUTH.best_gap_days <= model.best_gap_days.high
    assert model.half_life_decay.low <= 5.0 * 1.03 and model.half_life_decay.high >= 5.0 * 0.97
    assert model.half_life_decay.low < model.half_life_decay.estimate \
        < model.half_life_decay.high


def test_the_recovery_curve_alone_is_recovered_from_exact_bumps():
    gaps = np.array(GAPS, dtype=float)
    curve = fit_recovery(gaps, TRUTH.bump(gaps))

    assert curve.tau_recover == pytest.approx(12.0, rel=0.01)
    assert curve.tau_fade == pytest.approx(90.0, rel=0.01)
    assert curve.best_gap_days == pytest.approx(TRUTH.best_gap_days, rel=0.01)


def test_too_few_drops_give_no_recovery_curve_and_say_so():
    counts, days = _history(6)
    model = fit_cycle(counts[: int(days[2]) + 20], days[:3], bootstrap=0)

    assert model.recovery is None and model.best_gap_days is None
    assert any("recovery curve needs" in note for note in model.notes)
    assert model.expected_attention(30) == pytest.approx(
        model.fit.baseline + np.mean(model.fit.amplitudes))
