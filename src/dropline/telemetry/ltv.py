"""Probabilistic customer lifetime value: summaries, predictions and the fitted models.

The functional core of the LTV estimate. An event log (customer, date, amount) becomes
per-customer sufficient statistics with `summarise_transactions`; the models are fitted
with `fit_bgnbd` / `fit_pareto_nbd` / `fit_gamma_gamma` (from `ltv_fit`, re-exported
here) and turned into per-customer forecasts by the functions below.

Conventions (those of the BTYD literature and the CDNOW reference data):

* a transaction is a distinct purchase *day* of a customer: rows on one day are one
  transaction with their amounts summed;
* the first transaction is the acquisition; ``x`` counts the *repeat* transactions;
* time is in weeks, days / 7, measured from the customer's first purchase;
* the calibration period ends on `calibration_end` inclusive, the holdout runs from the
  next day to `holdout_end` inclusive.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, hyp2f1

from dropline.telemetry.ltv_fit import (
    BgNbdFit,
    GammaGammaFit,
    ParetoNbdFit,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    pareto_log_a0,
)

__all__ = [
    "BgNbdFit",
    "CustomerSummary",
    "GammaGammaFit",
    "HoldoutCheck",
    "LtvModel",
    "ParetoNbdFit",
    "conditional_expected_spend",
    "expected_purchases",
    "expected_purchases_population",
    "expected_value",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_ltv_model",
    "fit_pareto_nbd",
    "probability_alive",
    "summarise_transactions",
]

FloatArray = NDArray[np.float64]
DateLike = dt.date | str | np.datetime64
DAYS_PER_WEEK = 7.0
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """Calibration (and optionally holdout) statistics, one entry per customer.

    Customers are those whose first purchase falls on or before the calibration end,
    in the sorted order of their ids.
    """

    customer_ids: NDArray
    x: FloatArray  # repeat transactions in the calibration period
    t_x: FloatArray  # weeks from first purchase to the last calibration transaction
    T: FloatArray  # weeks from first purchase to the calibration end
    zbar: FloatArray  # mean amount of the repeat calibration transactions, 0 when x = 0
    first_amount: FloatArray  # amount of the acquisition transaction
    holdout_x: FloatArray | None = None  # transactions in the holdout period
    holdout_revenue: FloatArray | None = None
    holdout_weeks: float | None = None

    def __len__(self) -> int:
        return int(self.x.size)


def _as_day(value: DateLike) -> np.int64:
    return np.datetime64(value, "D").astype(np.int64)


def summarise_transactions(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    amounts: ArrayLike,
    *,
    calibration_end: DateLike,
    holdout_end: DateLike | None = None,
) -> CustomerSummary:
    """Reduce an event log to the per-customer (x, t_x, T, zbar) the models need.

    `dates` may be anything numpy reads as datetime64 (date objects, ISO strings,
    datetime64 of any unit); the time of day is ignored. Rows after the holdout end (or
    after the calibration end when there is no holdout) are ignored, and so are customers
    acquired after the calibration end: they have no calibration history.
    """
    ids = np.asarray(customer_ids)
    days = np.asarray(dates).astype("datetime64[D]").astype(np.int64)
    amount = np.asarray(amounts, dtype=np.float64)
    if not (ids.shape == days.shape == amount.shape) or ids.ndim != 1:
        raise ValueError("customer_ids, dates and amounts must be 1-d and of the same length")
    cal_end = _as_day(calibration_end)
    last_day = cal_end if holdout_end is None else _as_day(holdout_end)
    if last_day < cal_end:
        raise ValueError("holdout_end must not be before calibration_end")

    uniq_ids, code = np.unique(ids, return_inverse=True)
    code = code.ravel()
    # One row per customer-day: sort by (customer, day) and sum the amounts of each run.
    order = np.lexsort((days, code))
    c, d, m = code[order], days[order], amount[order]
    new = np.ones(c.size, dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(new)
    c, d = c[starts], d[starts]
    m = np.add.reduceat(m, starts) if starts.size else m[:0]

    # The first day of each customer is the first row of its run (days are sorted).
    cust_start = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if c.size else starts[:0]
    first_day = d[cust_start]
    acquired = first_day <= cal_end
    n_customers = uniq_ids.size
    first_of = np.empty(n_customers, dtype=np.int64)
    first_of[c[cust_start]] = first_day
    first_amt = np.zeros(n_customers)
    first_amt[c[cust_start]] = m[cust_start]

    is_first = np.zeros(c.size, dtype=bool)
    is_first[cust_start] = True
    in_cal = d <= cal_end
    repeat_cal = in_cal & ~is_first
    x = np.bincount(c[repeat_cal], minlength=n_customers).astype(np.float64)
    repeat_spend = np.bincount(c[repeat_cal], weights=m[repeat_cal], minlength=n_customers)
    last_cal = np.full(n_customers, np.iinfo(np.int64).min)
    np.maximum.at(last_cal, c[in_cal], d[in_cal])

    keep = np.zeros(n_customers, dtype=bool)
    keep[c[cust_start][acquired]] = True
    first_k = first_of[keep]
    x_k = x[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        zbar = np.where(x_k > 0, repeat_spend[keep] / x_k, 0.0)
    summary = dict(
        customer_ids=uniq_ids[keep],
        x=x_k,
        t_x=(last_cal[keep] - first_k) / DAYS_PER_WEEK,
        T=(cal_end - first_k) / DAYS_PER_WEEK,
        zbar=zbar,
        first_amount=first_amt[keep],
    )
    if holdout_end is None:
        return CustomerSummary(**summary)
    in_hold = (d > cal_end) & (d <= last_day)
    hx = np.bincount(c[in_hold], minlength=n_customers).astype(np.float64)
    hrev = np.bincount(c[in_hold], weights=m[in_hold], minlength=n_customers)
    return CustomerSummary(**summary, holdout_x=hx[keep], holdout_revenue=hrev[keep],
                           holdout_weeks=float(last_day - cal_end) / DAYS_PER_WEEK)


# --------------------------------------------------------------------------- forecasts


def _arrays(*values: ArrayLike) -> tuple[FloatArray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values))


def _bgnbd_log_dead_odds(f: BgNbdFit, x, t_x, T) -> FloatArray:
    """log of P(dropped out after the last purchase) / P(alive), -inf when x = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log(f.a) - np.log(f.b + x - 1.0)
                        + (f.r + x) * (np.log(f.alpha + T) - np.log(f.alpha + t_x)), -np.inf)


def _pareto_log_dead_odds(f: ParetoNbdFit, x, t_x, T) -> FloatArray:
    log_a0 = pareto_log_a0(f.r, f.alpha, f.s, f.beta, x, t_x, T)
    return (np.log(f.s) - np.log(f.r + f.s + x) + (f.r + x) * np.log(f.alpha + T)
            + f.s * np.log(f.beta + T) + log_a0)


def probability_alive(
    params: BgNbdFit | ParetoNbdFit, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(customer still active at T | x, t_x, T). Always 1 under BG/NBD when x = 0."""
    xa, ta, Ta = _arrays(x, t_x, T)
    if isinstance(params, BgNbdFit):
        return expit(-_bgnbd_log_dead_odds(params, xa, ta, Ta))
    return expit(-_pareto_log_dead_odds(params, xa, ta, Ta))


# Beyond this a + b the drop-out probabilities no longer vary between customers (the fit
# ran a and b to infinity together, e.g. on a young shop), and the 2F1 terms of the general
# form overflow: the limit with one drop-out probability p = a / (a + b) is used instead.
FIXED_DROPOUT_AB = 1e5


def _fixed_dropout_where_needed(head: FloatArray, a: float, b: float, shape: ArrayLike,
                                scale: ArrayLike, t: ArrayLike) -> FloatArray:
    """E[purchases in t | alive] in the BG/NBD limit a, b -> infinity with a/(a+b) = p fixed:
    with rate lambda ~ Gamma(shape, scale), (1 - E[exp(-lambda p t)]) / p =
    (1 - (scale / (scale + p t))^shape) / p. Used where the general form is not finite."""
    if a + b <= FIXED_DROPOUT_AB and np.isfinite(head).all():
        return head
    p = a / (a + b)
    limit = -np.expm1(np.asarray(shape) * (np.log(scale) - np.log(np.asarray(scale)
                                                                  + p * np.asarray(t)))) / p
    if a + b > FIXED_DROPOUT_AB:
        return np.asarray(limit, dtype=np.float64)
    return np.where(np.isfinite(head), head, limit)


def expected_purchases(
    params: BgNbdFit | ParetoNbdFit, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[transactions in (T, T + t] | x, t_x, T]: the conditional expectation per customer.

    BG/NBD: FHL (2005) eq. 10. Pareto/NBD: Schmittlein et al. (1987), E given alive times
    P(alive). The BG/NBD form has a removable singularity at a = 1, nudged aside here.
    """
    ta_, xa, txa, Ta = _arrays(t, x, t_x, T)
    if isinstance(params, BgNbdFit):
        r, alpha, b = params.r, params.alpha, params.b
        a = params.a if abs(params.a - 1.0) > 1e-8 else 1.0 + 1e-8
        z = ta_ / (alpha + Ta + ta_)
        # Euler's transformation of FHL's ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x;
        # a+b+x-1; z): the same value without the two factors of size ~ 2^x that overflow
        # for heavy buyers.
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            tail = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0,
                                                   a + b + xa - 1.0, z)
            head = (a + b + xa - 1.0) / (a - 1.0) * (1.0 - tail)
        head = _fixed_dropout_where_needed(head, a, b, r + xa, alpha + Ta, ta_)
        return head * expit(-_bgnbd_log_dead_odds(params, xa, txa, Ta))
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    s_ = s if abs(s - 1.0) > 1e-8 else 1.0 + 1e-8
    given_alive = ((r + xa) * (beta + Ta) / ((alpha + Ta) * (s_ - 1.0))
                   * (1.0 - np.exp((s_ - 1.0) * (np.log(beta + Ta) - np.log(beta + Ta + ta_)))))
    return given_alive * expit(-_pareto_log_dead_odds(params, xa, txa, Ta))


def expected_purchases_population(params: BgNbdFit | ParetoNbdFit, t: ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat transactions in the first t weeks of a new customer."""
    ta = np.asarray(t, dtype=np.float64)
    if isinstance(params, BgNbdFit):
        r, alpha, a, b = params.r, params.alpha, params.a, params.b
        a = a if abs(a - 1.0) > 1e-8 else 1.0 + 1e-8
        z = ta / (alpha + ta)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            tail = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b - 1.0, z)
            head = (a + b - 1.0) / (a - 1.0) * (1.0 - tail)
        return _fixed_dropout_where_needed(np.asarray(head, dtype=np.float64), a, b, r, alpha,
                                           ta)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    s = s if abs(s - 1.0) > 1e-8 else 1.0 + 1e-8
    return r * beta / (alpha * (s - 1.0)) * (1.0 - (beta / (beta + ta)) ** (s - 1.0))


def conditional_expected_spend(gg: GammaGammaFit, x: ArrayLike, zbar: ArrayLike) -> FloatArray:
    """E[spend per transaction | x, zbar] under Gamma-Gamma (FH 2013, eq. 5).

    A weighted mean of the population mean p*gamma/(q-1) and the customer's own zbar;
    with x = 0 it is the population mean. Infinite when q <= 1.
    """
    xa, za = _arrays(x, zbar)
    if gg.q <= 1.0:
        return np.full(xa.shape, np.inf)
    return gg.p * (gg.gamma + xa * za) / (gg.p * xa + gg.q - 1.0)


def expected_value(
    bgnbd: BgNbdFit | ParetoNbdFit,
    gg: GammaGammaFit,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    zbar: ArrayLike,
    *,
    horizon_weeks: float,
    annual_discount_rate: float,
) -> FloatArray:
    """Discounted expected revenue per customer over the next `horizon_weeks`.

    The expected purchases of each week (a difference of conditional expectations) are
    priced at the Gamma-Gamma conditional spend and discounted to today at the end of
    their week, compounding `annual_discount_rate` over a 365.25-day year. The last
    step is a partial week when the horizon is not whole.
    """
    if horizon_weeks <= 0:
        raise ValueError("horizon_weeks must be positive")
    if annual_discount_rate <= -1.0:
        raise ValueError("annual_discount_rate must be greater than -1")
    xa, txa, Ta, za = _arrays(x, t_x, T, zbar)
    ends = np.minimum(np.arange(1, int(np.ceil(horizon_weeks)) + 1, dtype=np.float64),
                      horizon_weeks)
    discount = (1.0 + annual_discount_rate) ** (-ends * DAYS_PER_WEEK / DAYS_PER_YEAR)
    value = np.zeros(xa.shape)
    previous = np.zeros(xa.shape)
    for end, factor in zip(ends, discount):
        cumulative = expected_purchases(bgnbd, end, xa, txa, Ta)
        value += (cumulative - previous) * factor
        previous = cumulative
    return value * conditional_expected_spend(gg, xa, za)


# --------------------------------------------------------------------------- use case


@dataclass(frozen=True, slots=True)
class HoldoutCheck:
    """Model forecasts for the holdout period next to what the customers really did."""

    weeks: float
    actual_transactions: float
    predicted_transactions: float
    actual_revenue: float
    predicted_revenue: float  # inf when the Gamma-Gamma mean spend is infinite
    pareto_predicted_transactions: float | None


@dataclass(frozen=True, slots=True)
class LtvModel:
    customers: int
    repeaters: int
    calibration_repeat_transactions: float
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit
    pareto_nbd: ParetoNbdFit | None
    holdout: HoldoutCheck | None


def fit_ltv_model(summary: CustomerSummary, *, with_pareto: bool) -> LtvModel:
    """Fit the purchase (BG/NBD, optionally Pareto/NBD) and spend models to a summary and,
    when the summary has a holdout period, forecast it for comparison."""
    bgnbd = fit_bgnbd(summary.x, summary.t_x, summary.T)
    gg = fit_gamma_gamma(summary.x, summary.zbar)
    pareto = fit_pareto_nbd(summary.x, summary.t_x, summary.T) if with_pareto else None
    holdout = None
    if summary.holdout_weeks is not None:
        assert summary.holdout_x is not None and summary.holdout_revenue is not None
        weeks = summary.holdout_weeks
        purchases = expected_purchases(bgnbd, weeks, summary.x, summary.t_x, summary.T)
        spend = conditional_expected_spend(gg, summary.x, summary.zbar)
        holdout = HoldoutCheck(
            weeks=weeks,
            actual_transactions=float(summary.holdout_x.sum()),
            predicted_transactions=float(purchases.sum()),
            actual_revenue=float(summary.holdout_revenue.sum()),
            predicted_revenue=float(np.dot(purchases, spend)),
            pareto_predicted_transactions=None if pareto is None else float(
                expected_purchases(pareto, weeks, summary.x, summary.t_x, summary.T).sum()),
        )
    return LtvModel(
        customers=len(summary),
        repeaters=int((summary.x > 0).sum()),
        calibration_repeat_transactions=float(summary.x.sum()),
        bgnbd=bgnbd,
        gamma_gamma=gg,
        pareto_nbd=pareto,
        holdout=holdout,
    )
