"""The attention-cycle model recovers a known cycle from a constructed history."""

from __future__ import annotations

import numpy as np
import pytest

from dropline.planning.model import (
    STEP_DAYS,
    RecoveryCurve,
    SeriesFit,
    bounded_best_gap,
    drop_weights,
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


def test_a_drop_under_half_the_typical_size_counts_by_the_square_of_its_share():
    assert drop_weights([20, 20, 24, 6, 10, 40]) == pytest.approx(
        [1.0, 1.0, 1.0, (6 / 10) ** 2, 1.0, 1.0])
    assert drop_weights([]) == []


def test_one_tiny_drop_with_no_bump_moves_the_recommended_gap_by_at_most_one_step():
    counts, days = _history(7)
    before, _ = bounded_best_gap(counts, days)
    # A 6-unit test drop three days after the last one: nobody was told, nothing rose.
    after, previous = bounded_best_gap(counts, [*days, days[-1] + 3],
                                       [*([1.0] * len(days)), drop_weights([20, 6])[1]])

    unbounded = fit_cycle(counts, [*days, days[-1] + 3], bootstrap=0)
    assert before == pytest.approx(TRUTH.best_gap_days, rel=0.2)
    assert abs(after - previous) <= STEP_DAYS
    assert abs(after - before) <= STEP_DAYS + 1
    # Without the bound and the weights the same drop drags the plain fit much further.
    assert abs(unbounded.best_gap_days.estimate - before) > abs(after - before)


def test_an_edge_of_range_fit_is_refitted_with_the_prior_and_stays_inside_the_gaps_tried():
    gaps = np.array([20.0, 25.0, 30.0, 35.0, 40.0])
    rising = 10.0 * gaps  # bumps that only grow with the gap: no fade is visible at all

    curve = fit_recovery(gaps, rising)

    assert curve.tau_fade < 0.99 * 3650 and curve.tau_recover < 0.99 * 365
    assert 0.5 * gaps.min() <= curve.best_gap_days <= 1.5 * gaps.max()
