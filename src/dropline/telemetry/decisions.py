"""Decisions from telemetry, pure, each returning its inputs next to its answer so a reader
can redo the sum:

* ``cac_ceilings``: the most to pay to acquire a customer, per drop type:
  90-day LTV x gross margin / target LTV:CAC ratio;
* ``delivery_subsidy_decision``: does subsidising a first delivery pay for itself in the
  retention and 90-day value it buys, judged on comparable customers, with a confidence
  interval;
* ``cash_forecast``: when the cash of the next production run goes out and comes back in,
  week by week.

Money is integer minor units throughout; ratios are plain floats shown as given.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from statistics import NormalDist

from dropline.telemetry.cohorts import GroupValue

DEFAULT_GROSS_MARGIN = 0.6
DEFAULT_TARGET_RATIO = 3.0
MIN_CUSTOMERS = 20  # below this a group's 90-day value is shown but flagged as thin


def _fraction(value: float) -> Fraction:
    # Through str so 0.6 is 3/5, not the binary float nearest to it: ceilings come out exact.
    return Fraction(str(value))


# ---------------------------------------------------------------------------- CAC ceilings


@dataclass(frozen=True)
class CacCeiling:
    drop_type: str
    basis: str  # "drop tag" (orders carried drop_type) or "product family" (the fallback)
    customers: int  # whose 90-day window has passed
    pending: int  # acquired too recently to count yet
    ltv_90: int | None  # net revenue per customer in their first 90 days, minor units
    gross_margin: float
    target_ratio: float
    ceiling: int | None  # minor units, rounded down; None without observed customers
    formula: str
    note: str | None


def cac_ceilings(
    values: Sequence[GroupValue], *, gross_margin: float | Mapping[str, float] =
    DEFAULT_GROSS_MARGIN, target_ratio: float = DEFAULT_TARGET_RATIO,
    tagged: Collection[str] = (), min_customers: int = MIN_CUSTOMERS,
) -> list[CacCeiling]:
    """One ceiling per drop type. ``values`` are the 90-day values per drop type (see
    ``cohorts.value_by(customers, "drop_type")``); ``gross_margin`` is one share for all or
    a share per drop type (missing types take ``DEFAULT_GROSS_MARGIN``); ``tagged`` names
    the drop types that came from drop tags rather than from the product family."""
    if target_ratio <= 0:
        raise ValueError("target_ratio must be positive")
    out = []
    for value in values:
        margin = (gross_margin.get(value.key, DEFAULT_GROSS_MARGIN)
                  if isinstance(gross_margin, Mapping) else gross_margin)
        if not 0 <= margin <= 1:
            raise ValueError(f"gross margin {margin} for {value.key} is not a share in [0, 1]")
        ceiling = None
        if value.revenue_per_customer is not None:
            ceiling = math.floor(value.revenue_per_customer * _fraction(margin)
                                 / _fraction(target_ratio))
        note = None
        if value.customers == 0:
            note = "no customer of this type is 90 days old yet: no ceiling"
        elif value.customers < min_customers:
            people = "customer" if value.customers == 1 else "customers"
            note = f"only {value.customers} {people} with a full 90 days: a rough ceiling"
        out.append(CacCeiling(
            drop_type=value.key, basis="drop tag" if value.key in tagged else "product family",
            customers=value.customers, pending=value.pending,
            ltv_90=value.revenue_per_customer, gross_margin=margin, target_ratio=target_ratio,
            ceiling=ceiling,
            formula=(f"{value.revenue_per_customer} x {margin:g} / {target_ratio:g}"
                     if value.revenue_per_customer is not None else "n/a"),
            note=note))
    return out


# ------------------------------------------------------------------------ delivery subsidy


@dataclass(frozen=True)
class SubsidyCustomer:
    """A customer whose 90 days since the first purchase have passed."""

    subsidised: bool  # their first delivery was subsidised
    stratum: str  # what makes customers comparable, e.g. "2026-03|hub-window"
    retained: bool  # ordered again within 90 days
    value_90: int  # 90-day net revenue, minor units


@dataclass(frozen=True)
class Effect:
    """Subsidised minus not subsidised, averaged over the subsidised customers' strata."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class SubsidyDecision:
    recommend: bool
    reason: str
    subsidised: int  # customers compared (in strata holding both groups)
    not_subsidised: int
    strata: int
    unmatched_subsidised: int  # subsidised customers with no comparable unsubsidised one
    retention_subsidised: float | None  # raw 90-day repeat rates of the compared customers
    retention_not_subsidised: float | None
    retention_effect: Effect | None  # percentage points / 100
    value_effect: Effect | None  # minor units per customer
    gross_margin: float
    cost_per_subsidy: int  # what one subsidised first delivery costs the shop, minor units
    net_gain: Effect | None  # value_effect x margin - cost, per subsidised customer
    confidence: float
    method: str = ("stratified difference of means (exact matching on the strata), weighted "
                   "by subsidised customers; normal-approximation interval")


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, var


def _stratified_effect(groups: Mapping[str, tuple[list[float], list[float]]], z: float
                       ) -> Effect:
    treated = sum(len(t) for t, _ in groups.values())
    estimate = variance = 0.0
    for t, c in groups.values():
        weight = len(t) / treated
        mean_t, var_t = _mean_var(t)
        mean_c, var_c = _mean_var(c)
        estimate += weight * (mean_t - mean_c)
        variance += weight**2 * (var_t / len(t) + var_c / len(c))
    half = z * math.sqrt(variance)
    return Effect(estimate, estimate - half, estimate + half)


def delivery_subsidy_decision(
    customers: Sequence[SubsidyCustomer], *, cost_per_subsidy: int,
    gross_margin: float = DEFAULT_GROSS_MARGIN, confidence: float = 0.95,
) -> SubsidyDecision:
    """Recommend subsidising first deliveries only when the extra 90-day gross profit of a
    subsidised customer exceeds the subsidy's cost even at the low end of the interval."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    strata: dict[str, tuple[list[SubsidyCustomer], list[SubsidyCustomer]]] = {}
    for c in customers:
        strata.setdefault(c.stratum, ([], []))[0 if c.subsidised else 1].append(c)
    both = {k: v for k, v in strata.items() if v[0] and v[1]}
    unmatched = sum(len(t) for k, (t, _) in strata.items() if k not in both)
    n_t = sum(len(t) for t, _ in both.values())
    n_c = sum(len(c) for _, c in both.values())
    common = dict(subsidised=n_t, not_subsidised=n_c, strata=len(both),
                  unmatched_subsidised=unmatched, gross_margin=gross_margin,
                  cost_per_subsidy=cost_per_subsidy, confidence=confidence)
    if not both:
        return SubsidyDecision(
            recommend=False,
            reason=("no comparison possible: no period and fulfilment path holds both "
                    "subsidised and unsubsidised customers with 90 days of history"),
            retention_subsidised=None, retention_not_subsidised=None, retention_effect=None,
            value_effect=None, net_gain=None, **common)
    retention = _stratified_effect({k: ([float(x.retained) for x in t],
                                        [float(x.retained) for x in c])
                                    for k, (t, c) in both.items()}, z)
    value = _stratified_effect({k: ([float(x.value_90) for x in t],
                                    [float(x.value_90) for x in c])
                                for k, (t, c) in both.items()}, z)
    net = Effect(value.estimate * gross_margin - cost_per_subsidy,
                 value.low * gross_margin - cost_per_subsidy,
                 value.high * gross_margin - cost_per_subsidy)
    if net.low > 0:
        recommend, reason = True, (
            f"yes: a subsidised first delivery brings {value.estimate:.0f} more in 90-day "
            f"revenue per customer; at a {gross_margin:g} margin that beats its cost of "
            f"{cost_per_subsidy} even at the low end of the {confidence:.0%} interval")
    elif net.high < 0:
        recommend, reason = False, (
            "no: the extra 90-day gross profit is below the subsidy's cost across the whole "
            f"{confidence:.0%} interval")
    else:
        recommend, reason = False, (
            "no, not yet: the effect cannot be told apart from break-even at this sample "
            f"size ({n_t} subsidised vs {n_c} comparable customers); keep it off or run it as "
            "a test until the interval clears the cost")
    rate_t = sum(x.retained for t, _ in both.values() for x in t) / n_t
    rate_c = sum(x.retained for _, c in both.values() for x in c) / n_c
    return SubsidyDecision(recommend=recommend, reason=reason, retention_subsidised=rate_t,
                           retention_not_subsidised=rate_c, retention_effect=retention,
                           value_effect=value, net_gain=net, **common)


# ---------------------------------------------------------------------------- cash forecast


@dataclass(frozen=True)
class ProductionRunInputs:
    members: int  # paying members who get (or usually buy) the run
    member_uptake: float  # units per member
    waitlist: int  # people waiting for the run
    waitlist_conversion: float  # units per waitlisted person
    past_sell_through: Sequence[int]  # open-sale units sold by recent comparable runs
    unit_cost: int  # minor units per unit made
    unit_price: int  # minor units per unit sold (net of discounts)
    lead_time_weeks: int  # from order to units on hand
    start: dt.date  # the Monday of the week the run is ordered
    deposit_share: float = 0.5  # paid to the factory at order; the rest on delivery
    sell_curve: Sequence[float] = (0.5, 0.25, 0.15, 0.1)  # open-sale shares per week on sale
    refund_rate: float = 0.0  # share of sales refunded
    safety_share: float = 0.0  # extra units made above expected demand
    currency: str = "GBP"


@dataclass(frozen=True)
class CashWeek:
    week: int
    starts: dt.date
    cash_out: int
    cash_in: int
    net: int
    cumulative: int
    what: str


@dataclass(frozen=True)
class CashForecast:
    inputs: ProductionRunInputs
    demand_members: float
    demand_waitlist: float
    demand_open_sale: float  # the mean of past sell-through
    units: int  # to make: expected demand plus safety, rounded up
    units_sold: float
    cost_total: int
    revenue_total: int  # net of refunds
    weeks: list[CashWeek]
    peak_cash_need: int  # the lowest cumulative position, as a positive amount
    peak_week: int
    break_even_week: int | None  # first week the cumulative position is back >= 0
    notes: list[str] = field(default_factory=list)


def _half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def cash_forecast(inputs: ProductionRunInputs) -> CashForecast:
    """Expected demand -> units to make -> a weekly table of cash out (deposit at order,
    balance on delivery) and cash in (members' and waitlist units on arrival, open sale
    along ``sell_curve`` from the arrival week)."""
    p = inputs
    if p.lead_time_weeks < 0 or p.unit_cost < 0 or p.unit_price < 0:
        raise ValueError("lead time, unit cost and unit price must not be negative")
    for name in ("member_uptake", "waitlist_conversion", "safety_share"):
        if getattr(p, name) < 0:
            raise ValueError(f"{name} must not be negative")
    if not (0 <= p.deposit_share <= 1 and 0 <= p.refund_rate <= 1):
        raise ValueError("deposit_share and refund_rate are shares in [0, 1]")
    curve = [_fraction(s) for s in p.sell_curve]
    if not curve or any(s < 0 for s in curve) or sum(curve) != 1:
        raise ValueError("sell_curve must be non-negative shares that add up to 1")
    notes = []
    members = p.members * _fraction(p.member_uptake)
    waitlist = p.waitlist * _fraction(p.waitlist_conversion)
    if p.past_sell_through:
        open_sale = Fraction(sum(p.past_sell_through), len(p.past_sell_through))
    else:
        open_sale = Fraction(0)
        notes.append("no past runs: open-sale demand taken as zero")
    demand = members + waitlist + open_sale
    units = math.ceil(demand * (1 + _fraction(p.safety_share)))
    cost = units * p.unit_cost
    deposit = _half_up(cost * _fraction(p.deposit_share))
    keep = 1 - _fraction(p.refund_rate)
    arrival = p.lead_time_weeks
    last = arrival + len(curve) - 1
    out = [0] * (last + 1)
    cash_in = [0] * (last + 1)
    what = [[] for _ in range(last + 1)]
    out[0] += deposit
    what[0].append(f"order {units} units, deposit {p.deposit_share:g}")
    out[arrival] += cost - deposit
    what[arrival].append("units arrive, balance paid")
    committed = members + waitlist
    # Cash in is rounded per week on the running total, so the weeks add up to the total.
    sold = committed + open_sale
    revenue_total = _half_up(sold * p.unit_price * keep)
    running = committed
    booked = _half_up(running * p.unit_price * keep)
    cash_in[arrival] += booked
    if committed:
        what[arrival].append(f"{float(committed):g} units to members and the waitlist")
    for k, share in enumerate(curve):
        running += open_sale * share
        now = _half_up(running * p.unit_price * keep)
        cash_in[arrival + k] += now - booked
        booked = now
        if open_sale and share:
            what[arrival + k].append(f"open sale {float(share):.0%}")
    weeks, cumulative = [], 0
    for k in range(last + 1):
        net = cash_in[k] - out[k]
        cumulative += net
        weeks.append(CashWeek(week=k, starts=p.start + dt.timedelta(weeks=k), cash_out=out[k],
                              cash_in=cash_in[k], net=net, cumulative=cumulative,
                              what="; ".join(what[k])))
    low = min(weeks, key=lambda w: (w.cumulative, w.week))
    back = next((w.week for w in weeks if w.week >= low.week and w.cumulative >= 0), None)
    if back is None:
        notes.append("the run does not pay back within the forecast: revenue below cost")
    return CashForecast(
        inputs=p, demand_members=float(members), demand_waitlist=float(waitlist),
        demand_open_sale=float(open_sale), units=units, units_sold=float(sold),
        cost_total=cost, revenue_total=revenue_total, weeks=weeks,
        peak_cash_need=max(0, -low.cumulative), peak_week=low.week, break_even_week=back,
        notes=notes)
