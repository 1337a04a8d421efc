"""The shop's own LTV: robust on small and degenerate shops, cut like the cohorts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from dropline.telemetry.cohorts import Purchase, PurchaseLog, summarise_customers
from dropline.telemetry.ltv import BgNbdFit, expected_purchases, expected_purchases_population
from dropline.telemetry.shop_ltv import estimate_shop_ltv

UTC = dt.UTC


def _fit(a: float, b: float) -> BgNbdFit:
    return BgNbdFit(r=0.36, alpha=7.8, a=a, b=b, loglik=0.0, converged=True, at_boundary=True,
                    boundary_note=None, customers=1)


def test_bgnbd_forecasts_stay_finite_when_the_fit_runs_a_and_b_to_infinity():
    """A young shop's fit can send a and b to the edge together (one drop-out probability
    for everyone); the general formula overflows there, the fixed-p limit takes over."""
    x, t_x, T = np.array([0.0, 1.0, 4.0]), np.array([0.0, 10.0, 30.0]), np.array([40.0] * 3)

    huge = expected_purchases(_fit(4.3e5, 3.7e6), 52, x, t_x, T)
    large = expected_purchases(_fit(4.3e3, 3.7e4), 52, x, t_x, T)  # general form still works

    assert np.isfinite(huge).all()
    assert huge == pytest.approx(large, rel=2e-3)
    assert float(expected_purchases_population(_fit(4.3e5, 3.7e6), 52)) == pytest.approx(
        float(expected_purchases_population(_fit(4.3e3, 3.7e4), 52)), rel=2e-3)


def _log(purchases: list[tuple[int, str, int, str]]) -> PurchaseLog:
    return PurchaseLog.from_rows([
        Purchase(c, dt.datetime.fromisoformat(day).replace(tzinfo=UTC), amount, order_id=i,
                 fulfilment_path=path)
        for i, (c, day, amount, path) in enumerate(purchases, start=1)])


def test_a_shop_without_repeat_customers_gets_a_boundary_note_not_a_crash():
    log = _log([(1, "2026-01-05", 5_000, "central"), (2, "2026-02-05", 7_000, "pop-up")])
    as_of = dt.datetime(2026, 6, 1, tzinfo=UTC)

    result = estimate_shop_ltv(log, summarise_customers(log, as_of=as_of),
                               calibration_end=as_of.date(), by=["fulfilment"])

    assert result.customers == 2 and result.repeaters == 0
    assert result.bgnbd.at_boundary
    assert any("no repeat" in note for note in result.notes)
    assert [(c.cut, c.customers, c.realised_per_customer) for c in result.cuts] == [
        ({"fulfilment": "central"}, 1, 5_000.0), ({"fulfilment": "pop-up"}, 1, 7_000.0)]
    assert all(np.isfinite(c.expected_value_per_customer) for c in result.cuts)


def test_an_empty_shop_says_there_is_nothing_to_fit():
    log = _log([])
    as_of = dt.datetime(2026, 6, 1, tzinfo=UTC)

    result = estimate_shop_ltv(log, summarise_customers(log, as_of=as_of),
                               calibration_end=as_of.date())

    assert result.bgnbd is None and result.cuts == []
    assert result.notes == ["no purchases yet: nothing to fit"]


def test_a_calibration_date_before_as_of_checks_the_forecast_on_a_holdout():
    rng = np.random.default_rng(3)
    rows = []
    for c in range(1, 121):
        day = dt.date(2025, 1, 1) + dt.timedelta(days=int(rng.integers(0, 120)))
        for _ in range(int(rng.integers(1, 5))):
            rows.append((c, day.isoformat(), int(rng.integers(2_000, 9_000)), "central"))
            day += dt.timedelta(days=int(rng.integers(10, 90)))
    rows = [r for r in rows if r[1] < "2026-01-01"]
    log = _log(rows)
    as_of = dt.datetime(2025, 12, 31, 23, tzinfo=UTC)

    result = estimate_shop_ltv(log, summarise_customers(log, as_of=as_of),
                               calibration_end=dt.date(2025, 9, 30))

    assert result.holdout is not None and result.holdout.weeks == pytest.approx(92 / 7)
    assert result.holdout.actual_transactions > 0
    assert len(result.curve_weeks) == 13 and len(result.new_customer_curve) == 13
    assert result.new_customer_curve == sorted(result.new_customer_curve)
