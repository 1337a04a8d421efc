"""LTV of the shop's own customers: BG/NBD + Gamma-Gamma fitted on the shop's orders up to a
calibration date, each customer's expected value over a horizon, and both averaged by any cut
of the first purchase (source, family, fulfilment path, drop type ...). Pure: it takes the
column form built by ``telemetry.service`` and returns plain dataclasses.

One model is fitted for the whole shop and every cut is the mean of its customers'
*conditional* forecasts (each given their own x, t_x, T and spend): a cut of forty customers
cannot carry a fit of its own, but its customers' histories still differ. Amounts are each
order's total net of what was refunded on it by the calibration end, in minor units.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dropline.telemetry.cohorts import Customers, PurchaseLog, _check_cuts
from dropline.telemetry.ltv import (
    DAYS_PER_WEEK,
    DAYS_PER_YEAR,
    BgNbdFit,
    GammaGammaFit,
    HoldoutCheck,
    conditional_expected_spend,
    expected_purchases,
    expected_purchases_population,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
    summarise_transactions,
)


@dataclass(frozen=True)
class LtvCut:
    cut: dict[str, str]
    customers: int
    realised_per_customer: float  # net revenue to the calibration end, minor units
    expected_purchases: float  # mean over the horizon
    probability_alive: float  # mean
    expected_value_per_customer: float  # discounted, over the horizon, minor units
    curve: list[float]  # expected cumulative revenue per customer at `curve_weeks`


@dataclass(frozen=True)
class ShopLtv:
    calibration_end: dt.date
    horizon_weeks: float
    annual_discount_rate: float
    currency: str
    customers: int
    repeaters: int
    bgnbd: BgNbdFit | None
    gamma_gamma: GammaGammaFit | None
    mean_spend: float | None  # the spend per repeat order the forecasts use, minor units
    holdout: HoldoutCheck | None
    by: tuple[str, ...]
    cuts: list[LtvCut]
    curve_weeks: list[float]
    # A brand-new customer: mean first order + expected repeat revenue by week (population).
    new_customer_curve: list[float]
    notes: list[str] = field(default_factory=list)


def _net_amounts(log: PurchaseLog, until_s: int) -> np.ndarray:
    """Each purchase's amount less what was refunded on that order by ``until_s``."""
    refunded = np.zeros(len(log), dtype=np.float64)
    if log.refund_order_id.size and len(log):
        by_order = np.argsort(log.order_id, kind="stable")
        keep = log.refund_at <= until_s
        pos = np.searchsorted(log.order_id[by_order], log.refund_order_id[keep])
        pos = np.minimum(pos, len(log) - 1)
        found = log.order_id[by_order][pos] == log.refund_order_id[keep]
        np.add.at(refunded, by_order[pos[found]], log.refund_amount[keep][found])
    return np.maximum(log.amount - refunded, 0.0)


def _discounted_purchases(bgnbd: BgNbdFit, x, t_x, T, *, horizon_weeks: float,
                          rate: float) -> np.ndarray:
    """Expected purchases of each week of the horizon, discounted to today (as in
    ``ltv.expected_value``, without the spend factor, so a fallback spend can be used)."""
    ends = np.minimum(np.arange(1, int(np.ceil(horizon_weeks)) + 1, dtype=np.float64),
                      horizon_weeks)
    factors = (1.0 + rate) ** (-ends * DAYS_PER_WEEK / DAYS_PER_YEAR)
    total = np.zeros(x.shape)
    previous = np.zeros(x.shape)
    for end, factor in zip(ends, factors):
        cumulative = expected_purchases(bgnbd, end, x, t_x, T)
        total += (cumulative - previous) * factor
        previous = cumulative
    return total


def estimate_shop_ltv(
    log: PurchaseLog, customers: Customers, *, calibration_end: dt.date,
    by: Sequence[str] = (), horizon_weeks: float = 52.0, annual_discount_rate: float = 0.10,
    curve_step_weeks: float = 4.0,
) -> ShopLtv:
    """Fit on purchases up to ``calibration_end`` (inclusive); when the log runs past it,
    the weeks after are a holdout that checks the forecast against what happened."""
    by = _check_cuts(by)
    if horizon_weeks <= 0 or curve_step_weeks <= 0:
        raise ValueError("horizon_weeks and curve_step_weeks must be positive")
    cal_end_s = int(dt.datetime.combine(calibration_end + dt.timedelta(days=1), dt.time(),
                                        dt.UTC).timestamp()) - 1
    last_day = dt.datetime.fromtimestamp(customers.as_of, dt.UTC).date()
    holdout_end = last_day if last_day > calibration_end else None
    amounts = _net_amounts(log, cal_end_s)
    keep = log.amount > 0
    curve_weeks = [float(w) for w in np.arange(curve_step_weeks, horizon_weeks + 1e-9,
                                               curve_step_weeks)]
    empty = ShopLtv(calibration_end, horizon_weeks, annual_discount_rate, log.currency, 0, 0,
                    None, None, None, None, by, [], curve_weeks, [])
    if not keep.any():
        return _with_note(empty, "no purchases yet: nothing to fit")
    summary = summarise_transactions(
        log.customer_id[keep], log.at[keep].astype("datetime64[s]"), amounts[keep],
        calibration_end=np.datetime64(calibration_end, "D"),
        holdout_end=None if holdout_end is None else np.datetime64(holdout_end, "D"))
    if len(summary) == 0 or not (summary.T > 0).any():
        return _with_note(empty, f"no customer bought before {calibration_end}: nothing to fit")
    notes: list[str] = []
    x, t_x, T = summary.x, summary.t_x, summary.T
    bgnbd = fit_bgnbd(x, t_x, T)
    if bgnbd.boundary_note:
        notes.append(bgnbd.boundary_note)
    gg: GammaGammaFit | None = None
    try:
        gg = fit_gamma_gamma(x, summary.zbar)
    except ValueError as exc:  # no repeat customer with a positive spend
        notes.append(f"no spend model: {exc}")
    if gg is not None and gg.boundary_note:
        notes.append(gg.boundary_note)
    mean_spend = gg.population_mean_spend if gg is not None else math.inf
    spend = (conditional_expected_spend(gg, x, summary.zbar) if gg is not None
             else np.full(x.shape, math.inf))
    if not np.isfinite(spend).all() or not math.isfinite(mean_spend):
        # No finite Gamma-Gamma mean: price every forecast order at the shop's plain average
        # order value instead, and say so.
        mean_spend = float(amounts[keep].mean())
        spend = np.full(x.shape, mean_spend)
        notes.append("spend forecast uses the average order value (no usable Gamma-Gamma "
                     "mean)")
    holdout = None
    if summary.holdout_weeks is not None:
        assert summary.holdout_x is not None and summary.holdout_revenue is not None
        forecast = expected_purchases(bgnbd, summary.holdout_weeks, x, t_x, T)
        holdout = HoldoutCheck(
            weeks=summary.holdout_weeks, actual_transactions=float(summary.holdout_x.sum()),
            predicted_transactions=float(forecast.sum()),
            actual_revenue=float(summary.holdout_revenue.sum()),
            predicted_revenue=float(np.dot(forecast, spend)),
            pareto_predicted_transactions=None)
    purchases = expected_purchases(bgnbd, horizon_weeks, x, t_x, T)
    alive = probability_alive(bgnbd, x, t_x, T)
    value = _discounted_purchases(bgnbd, x, t_x, T, horizon_weeks=horizon_weeks,
                                  rate=annual_discount_rate) * spend
    curve = np.array([expected_purchases(bgnbd, w, x, t_x, T) * spend for w in curve_weeks])
    realised = np.bincount(
        np.searchsorted(summary.customer_ids, log.customer_id[keep & (log.at <= cal_end_s)]),
        weights=amounts[keep & (log.at <= cal_end_s)], minlength=len(summary))

    # Cut values come from the first purchase, as in the cohort tables.
    pos = np.searchsorted(customers.customer_id, summary.customer_ids)
    pos = np.minimum(pos, max(len(customers) - 1, 0))
    attrs = [customers.attributes[b][pos] for b in by]
    keys = (list(zip(*(a.tolist() for a in attrs))) if by else [()] * len(summary))
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    cuts = []
    for key in sorted(groups):
        idx = np.array(groups[key])
        cuts.append(LtvCut(
            cut=dict(zip(by, key)), customers=int(idx.size),
            realised_per_customer=float(realised[idx].mean()),
            expected_purchases=float(purchases[idx].mean()),
            probability_alive=float(alive[idx].mean()),
            expected_value_per_customer=float(value[idx].mean()),
            curve=[float(c) for c in curve[:, idx].mean(axis=1)]))
    first = float(summary.first_amount.mean())
    new_curve = [first + float(expected_purchases_population(bgnbd, w)) * mean_spend
                 for w in curve_weeks]
    if bgnbd.at_boundary:
        notes.append("the purchase model is at a boundary: treat its forecasts as rough")
    return ShopLtv(calibration_end, horizon_weeks, annual_discount_rate, log.currency,
                   len(summary), int((x > 0).sum()), bgnbd, gg, mean_spend, holdout, by,
                   cuts, curve_weeks, new_curve, notes)


def _with_note(result: ShopLtv, note: str) -> ShopLtv:
    return ShopLtv(**{**result.__dict__, "notes": [*result.notes, note]})
