"""Cohorts: what each group of new customers was worth 30, 60 and 90 days after their first
purchase. Pure functions over plain data (no session, no I/O), vectorised with NumPy.

Definitions (every output says them again where it matters):

* a **purchase** is a paid order with a positive total; the customer's **first purchase** (the
  earliest, ties broken by order id) puts them in a cohort and fixes what they are cut by: the
  acquisition source and campaign, the main product family of that order (its largest line),
  its fulfilment path, its drop type (the ``drop_type`` tag, else the main family) and whether
  its delivery was subsidised;
* **N-day revenue** is what the customer paid in orders placed in the N days from the first
  purchase (the first included) *less* refunds paid out in those same N days, so a window's
  figure is final once the window has passed;
* a customer **repeats** within N days when they placed a second order in that window;
* a cohort's N-day figures are shown only once the window is fully observed for *every*
  member, i.e. when the cohort's period ended N days or more before ``as_of``. Otherwise
  the figure is ``None`` and the row carries a note saying so (never a partial average that
  looks like a low one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

DAY = 86_400  # seconds
WINDOWS = (30, 60, 90)
Period = Literal["month", "week"]
# What a cohort can be cut by, each a property of the customer's first purchase.
CUTS = ("source", "campaign", "family", "fulfilment", "drop_type", "subsidised")
CUT_LABELS = {"source": "acquisition source", "campaign": "campaign",
              "family": "first product family", "fulfilment": "first fulfilment path",
              "drop_type": "first drop type", "subsidised": "first delivery subsidised"}

Int64 = NDArray[np.int64]


# ------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Purchase:
    """One paid order, as telemetry sees it."""

    customer_id: int
    at: dt.datetime
    amount: int  # minor units, what was charged (refunds are separate entries)
    order_id: int = 0
    family: str = ""  # the order's main product family
    fulfilment_path: str = "central"
    source: str = "direct"  # the customer's acquisition source
    campaign: str = ""
    drop_type: str = ""  # "" when the order carries no drop tag
    delivery_subsidised: bool = False


@dataclass(frozen=True)
class RefundEntry:
    customer_id: int
    at: dt.datetime
    amount: int  # minor units paid back
    order_id: int = 0


def _seconds(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    return int(value.timestamp())


@dataclass(frozen=True)
class PurchaseLog:
    """Purchases and refunds in column form (what the service reads from the database and
    what `from_rows` builds from plain rows). Times are UTC epoch seconds."""

    customer_id: Int64
    at: Int64
    amount: Int64
    order_id: Int64
    family: NDArray[np.str_]
    fulfilment_path: NDArray[np.str_]
    source: NDArray[np.str_]
    campaign: NDArray[np.str_]
    drop_type: NDArray[np.str_]
    subsidised: NDArray[np.bool_]
    refund_customer_id: Int64
    refund_at: Int64
    refund_amount: Int64
    refund_order_id: Int64
    currency: str = "GBP"

    def __len__(self) -> int:
        return int(self.amount.size)

    @classmethod
    def from_rows(cls, purchases: Iterable[Purchase], refunds: Iterable[RefundEntry] = (),
                  *, currency: str = "GBP") -> PurchaseLog:
        p = list(purchases)
        r = list(refunds)

        def ints(values: Iterable[int]) -> Int64:
            return np.fromiter(values, dtype=np.int64)

        def strs(values: Iterable[str]) -> NDArray[np.str_]:
            return np.array(list(values), dtype=np.str_) if p else np.array([], dtype="<U1")

        return cls(
            customer_id=ints(x.customer_id for x in p), at=ints(_seconds(x.at) for x in p),
            amount=ints(x.amount for x in p), order_id=ints(x.order_id for x in p),
            family=strs(x.family for x in p), fulfilment_path=strs(x.fulfilment_path for x in p),
            source=strs(x.source for x in p), campaign=strs(x.campaign for x in p),
            drop_type=strs(x.drop_type for x in p),
            subsidised=np.fromiter((x.delivery_subsidised for x in p), dtype=np.bool_),
            refund_customer_id=ints(x.customer_id for x in r),
            refund_at=ints(_seconds(x.at) for x in r), refund_amount=ints(x.amount for x in r),
            refund_order_id=ints(x.order_id for x in r), currency=currency)


# --------------------------------------------------------------------------- per customer


@dataclass(frozen=True)
class Customers:
    """One entry per customer with a first purchase on or before ``as_of``, in id order,
    with their first-purchase attributes and their net revenue and repeat flag per window."""

    customer_id: Int64
    first_at: Int64
    attributes: dict[str, NDArray[np.str_]]  # cut name -> value per customer
    windows: tuple[int, ...]
    net_revenue: dict[int, Int64]  # window days -> net revenue per customer (minor units)
    repeated: dict[int, NDArray[np.bool_]]  # window days -> placed a second order in it
    # Per purchase: the customer's index and seconds since their first purchase (for curves).
    order_customer: Int64
    order_offset: Int64
    order_amount: Int64
    refund_customer: Int64
    refund_offset: Int64
    refund_amount: Int64
    as_of: int

    def __len__(self) -> int:
        return int(self.customer_id.size)

    def observed(self, days: int) -> NDArray[np.bool_]:
        """Customers whose first ``days`` days lie wholly before ``as_of``."""
        return self.first_at + days * DAY <= self.as_of


def summarise_customers(log: PurchaseLog, *, as_of: dt.datetime,
                        windows: Sequence[int] = WINDOWS) -> Customers:
    """Each customer's first purchase, what it is cut by, and their N-day outcomes."""
    as_of_s = _seconds(as_of)
    keep = (log.at <= as_of_s) & (log.amount > 0)
    cid, at, amount, oid = (log.customer_id[keep], log.at[keep], log.amount[keep],
                            log.order_id[keep])
    uniq, code = np.unique(cid, return_inverse=True)
    code = code.ravel()
    n = uniq.size
    # The first purchase: sort by (customer, time, order id) and take each customer's first row.
    order = np.lexsort((oid, at, code))
    starts = np.flatnonzero(np.r_[True, code[order][1:] != code[order][:-1]]) if n else order[:0]
    first_rows = np.flatnonzero(keep)[order[starts]]  # rows of the log
    first_at = log.at[first_rows]
    family = log.family[first_rows]
    drop_type = log.drop_type[first_rows]
    attributes = {
        "source": log.source[first_rows],
        "campaign": log.campaign[first_rows],
        "family": family,
        "fulfilment": log.fulfilment_path[first_rows],
        # A drop tag on the first order when there is one, else its main product family.
        "drop_type": np.where(drop_type != "", drop_type, family),
        "subsidised": np.where(log.subsidised[first_rows], "yes", "no"),
    }
    offset = at - first_at[code]
    # Refunds of customers who bought (every refund belongs to a paid order), up to as_of.
    r_keep = log.refund_at <= as_of_s
    r_cid = log.refund_customer_id[r_keep]
    r_pos = np.searchsorted(uniq, r_cid)
    r_known = (r_pos < n) & (uniq[np.minimum(r_pos, max(n - 1, 0))] == r_cid) if n else (
        np.zeros(r_cid.size, dtype=bool))
    r_code = r_pos[r_known]
    r_amount = log.refund_amount[r_keep][r_known]
    r_offset = log.refund_at[r_keep][r_known] - first_at[r_code]

    net: dict[int, Int64] = {}
    repeated: dict[int, NDArray[np.bool_]] = {}
    for days in windows:
        inside = offset < days * DAY
        paid = np.bincount(code[inside], weights=amount[inside], minlength=n)
        r_inside = r_offset < days * DAY
        back = np.bincount(r_code[r_inside], weights=r_amount[r_inside], minlength=n)
        # Sums of integers below 2**53 are exact in float64; round() only guards the cast.
        net[days] = np.rint(paid - back).astype(np.int64)
        repeated[days] = np.bincount(code[inside], minlength=n) >= 2
    return Customers(
        customer_id=uniq.astype(np.int64), first_at=first_at, attributes=attributes,
        windows=tuple(windows), net_revenue=net, repeated=repeated, order_customer=code,
        order_offset=offset, order_amount=amount, refund_customer=r_code,
        refund_offset=r_offset, refund_amount=r_amount, as_of=as_of_s)


# ------------------------------------------------------------------------------ periods


def period_bounds(first_at: Int64, period: Period) -> tuple[Int64, Int64]:
    """(start, end) of each customer's cohort period as epoch days; end is exclusive."""
    days = first_at // DAY
    if period == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        start = days - (days + 3) % 7
        return start, start + 7
    if period == "month":
        months = days.astype("datetime64[D]").astype("datetime64[M]")
        return (months.astype("datetime64[D]").astype(np.int64),
                (months + 1).astype("datetime64[D]").astype(np.int64))
    raise ValueError(f"unknown period {period!r}: use 'month' or 'week'")


def _day(epoch_day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(epoch_day))


def period_label(start: dt.date, period: Period) -> str:
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start:%Y-%m}"


def _groups(keys: Sequence[NDArray], n: int) -> tuple[Int64, list[tuple[str, ...]]]:
    """Group index per customer and the distinct key tuples (as strings)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), []
    # Each key column to integer codes, folded in one column at a time and re-numbered after
    # each, so the combined code never exceeds customers x distinct values (no overflow).
    combined = np.zeros(n, dtype=np.int64)
    for key in keys:
        values, codes = np.unique(key, return_inverse=True)
        combined = np.unique(combined * values.size + codes.ravel(),
                             return_inverse=True)[1].ravel()
    code = combined.astype(np.int64)
    first_row = np.full(int(code.max()) + 1, n, dtype=np.int64)
    np.minimum.at(first_row, code, np.arange(n))
    tuples = [tuple(str(key[row]) for key in keys) for row in first_row.tolist()]
    return code, tuples


def _per_customer(total: int, customers: int) -> int:
    """Integer minor units, rounded half up (exact: no float)."""
    return (2 * total + customers) // (2 * customers)


# ------------------------------------------------------------------------------ cohorts


@dataclass(frozen=True)
class Cohort:
    period: str  # "2026-03" or "2026-W10"
    period_start: dt.date
    period_end: dt.date  # exclusive
    cut: dict[str, str]  # cut name -> value; empty when not cut
    customers: int
    net_revenue: dict[int, int | None]  # window days -> cohort total, None until observed
    revenue_per_customer: dict[int, int | None]  # minor units, rounded half up
    repeat_rate: dict[int, float | None]
    observed_days: int  # whole days from the period's end to as_of (negative: still open)
    fully_observed: bool  # every window has passed for every member
    note: str | None  # why figures are withheld, when they are


@dataclass(frozen=True)
class CohortTable:
    as_of: dt.datetime
    period: Period
    by: tuple[str, ...]
    windows: tuple[int, ...]
    currency: str
    cohorts: list[Cohort]
    customers: int
    notes: list[str] = field(default_factory=list)

    @property
    def not_fully_observed(self) -> list[Cohort]:
        return [c for c in self.cohorts if not c.fully_observed]


def _check_cuts(by: Sequence[str]) -> tuple[str, ...]:
    unknown = [b for b in by if b not in CUTS]
    if unknown:
        raise ValueError(f"unknown cut {', '.join(unknown)}: choose from {', '.join(CUTS)}")
    return tuple(dict.fromkeys(by))


def cohort_table(customers: Customers, *, period: Period = "month", by: Sequence[str] = (),
                 currency: str = "GBP") -> CohortTable:
    """Cohorts keyed by first-purchase period and any of the cuts, oldest first."""
    by = _check_cuts(by)
    windows = customers.windows
    n = len(customers)
    start, end = period_bounds(customers.first_at, period)
    code, keys = _groups([start, *(customers.attributes[b] for b in by)], n)
    as_of_day = customers.as_of // DAY
    cohorts = []
    sizes = np.bincount(code, minlength=len(keys))
    group_end = np.zeros(len(keys), dtype=np.int64)
    group_end[code] = end
    totals = {w: np.bincount(code, weights=customers.net_revenue[w], minlength=len(keys))
              for w in windows}
    repeats = {w: np.bincount(code, weights=customers.repeated[w], minlength=len(keys))
               for w in windows}
    # Group keys sort as strings: re-sort by period start (as a number), then by cut values.
    ordering = sorted(range(len(keys)), key=lambda i: (int(keys[i][0]), keys[i][1:]))
    for i in ordering:
        p_start = int(keys[i][0])
        p_end = int(group_end[i])
        size = int(sizes[i])
        seconds_left = customers.as_of - p_end * DAY
        revenue: dict[int, int | None] = {}
        per_customer: dict[int, int | None] = {}
        rate: dict[int, float | None] = {}
        withheld = []
        for w in windows:
            if seconds_left >= w * DAY:
                total = int(round(totals[w][i]))
                revenue[w], per_customer[w] = total, _per_customer(total, size)
                rate[w] = float(repeats[w][i]) / size
            else:
                revenue[w] = per_customer[w] = rate[w] = None
                withheld.append(w)
        start_date, end_date = _day(p_start), _day(p_end)
        note = None
        if withheld:
            full_on = end_date + dt.timedelta(days=max(windows))
            note = (f"not yet {max(windows)} days old: {', '.join(f'{w}-day' for w in withheld)} "
                    f"figures withheld until every member's window has passed "
                    f"(complete on {full_on:%Y-%m-%d})")
        cohorts.append(Cohort(
            period=period_label(start_date, period), period_start=start_date,
            period_end=end_date, cut=dict(zip(by, keys[i][1:])), customers=size,
            net_revenue=revenue, revenue_per_customer=per_customer, repeat_rate=rate,
            observed_days=int(as_of_day - p_end), fully_observed=not withheld, note=note))
    notes = []
    pending = [c for c in cohorts if not c.fully_observed]
    if pending:
        periods = sorted({c.period for c in pending})
        notes.append(f"{len(pending)} of {len(cohorts)} cohorts are not yet {max(windows)} days "
                     f"old ({', '.join(periods)}): their later windows are withheld, not zero")
    return CohortTable(as_of=dt.datetime.fromtimestamp(customers.as_of, dt.UTC), period=period,
                       by=by, windows=windows, currency=currency, cohorts=cohorts,
                       customers=n, notes=notes)


# ------------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class CurveRow:
    period: str
    cut: dict[str, str]
    customers: int
    values: list[float | None]  # one per age; None where not yet observed for every member


@dataclass(frozen=True)
class CohortCurves:
    """Per cohort and age (days since first purchase): cumulative net revenue per customer
    (minor units) and the cumulative share of customers who have placed a second order."""

    as_of: dt.datetime
    period: Period
    by: tuple[str, ...]
    ages: list[int]  # days
    revenue: list[CurveRow]
    repeat: list[CurveRow]
    currency: str


def cohort_curves(customers: Customers, *, period: Period = "month", by: Sequence[str] = (),
                  step_days: int = 30, steps: int = 12, currency: str = "GBP") -> CohortCurves:
    """The cohort heatmap (revenue) and repeat-purchase tracking (repeat) as matrices."""
    if step_days < 1 or steps < 1:
        raise ValueError("step_days and steps must be positive")
    by = _check_cuts(by)
    n = len(customers)
    start, end = period_bounds(customers.first_at, period)
    code, keys = _groups([start, *(customers.attributes[b] for b in by)], n)
    sizes = np.bincount(code, minlength=len(keys))
    group_end = np.zeros(len(keys), dtype=np.int64)
    group_end[code] = end
    ages = [step_days * k for k in range(1, steps + 1)]
    oc, off, amt = customers.order_customer, customers.order_offset, customers.order_amount
    rc, roff, ramt = customers.refund_customer, customers.refund_offset, customers.refund_amount
    revenue_rows, repeat_rows = [], []
    by_age_revenue, by_age_repeat = [], []
    for age in ages:
        inside = off < age * DAY
        paid = np.bincount(oc[inside], weights=amt[inside], minlength=n)
        r_in = roff < age * DAY
        net = paid - np.bincount(rc[r_in], weights=ramt[r_in], minlength=n)
        again = np.bincount(oc[inside], minlength=n) >= 2
        by_age_revenue.append(np.bincount(code, weights=net, minlength=len(keys)))
        by_age_repeat.append(np.bincount(code, weights=again, minlength=len(keys)))
    ordering = sorted(range(len(keys)), key=lambda i: (int(keys[i][0]), keys[i][1:]))
    for i in ordering:
        p_end = int(group_end[i])
        size = int(sizes[i])
        left = customers.as_of - p_end * DAY
        rev, rep = [], []
        for k, age in enumerate(ages):
            if left >= age * DAY:
                rev.append(float(by_age_revenue[k][i]) / size)
                rep.append(float(by_age_repeat[k][i]) / size)
            else:
                rev.append(None)
                rep.append(None)
        label = period_label(_day(int(keys[i][0])), period)
        cut = dict(zip(by, keys[i][1:]))
        revenue_rows.append(CurveRow(label, cut, size, rev))
        repeat_rows.append(CurveRow(label, cut, size, rep))
    return CohortCurves(as_of=dt.datetime.fromtimestamp(customers.as_of, dt.UTC), period=period,
                        by=by, ages=ages, revenue=revenue_rows, repeat=repeat_rows,
                        currency=currency)


# ------------------------------------------------------------------------ 90-day values


@dataclass(frozen=True)
class GroupValue:
    """N-day value of the fully observed customers of one group (for decisions)."""

    key: str
    customers: int  # fully observed
    pending: int  # in the group but their window has not passed yet
    revenue_per_customer: int | None  # minor units, rounded half up
    repeat_rate: float | None


def value_by(customers: Customers, cut: str, *, days: int = 90) -> list[GroupValue]:
    """Mean N-day net revenue and repeat rate per value of ``cut``, over the customers whose
    N-day window is complete (customer by customer, so no cohort waits for its last member)."""
    _check_cuts([cut])
    if days not in customers.windows:
        raise ValueError(f"no {days}-day window computed (windows: {customers.windows})")
    observed = customers.observed(days)
    values = customers.attributes[cut]
    out = []
    for key in sorted(set(values.tolist())):
        member = values == key
        done = member & observed
        count = int(done.sum())
        total = int(customers.net_revenue[days][done].sum())
        out.append(GroupValue(
            key=key, customers=count, pending=int((member & ~observed).sum()),
            revenue_per_customer=_per_customer(total, count) if count else None,
            repeat_rate=float(customers.repeated[days][done].mean()) if count else None))
    return out
