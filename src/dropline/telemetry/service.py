"""Telemetry reads: the shop's orders, refunds, customers and order events, as the column
form the pure modules (``cohorts``, ``shop_ltv``, ``decisions``) compute on.

Only reads; one query per table, no per-order round trips, so the same code serves the
demo's few hundred orders and a shop's hundred thousand (see ``bench/cohorts.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dropline.customers.models import Customer
from dropline.drops.models import DropWaitlistEntry, WaitlistStatus
from dropline.errors import InvalidInput
from dropline.events.models import DomainEvent
from dropline.memberships.models import Membership
from dropline.memberships.rules import MembershipStatus
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import Refund, RefundStatus
from dropline.telemetry.cohorts import (
    WINDOWS,
    CohortCurves,
    CohortTable,
    Customers,
    Period,
    PurchaseLog,
    cohort_curves,
    cohort_table,
    period_bounds,
    summarise_customers,
    value_by,
)
from dropline.telemetry.decisions import (
    DEFAULT_GROSS_MARGIN,
    DEFAULT_TARGET_RATIO,
    CacCeiling,
    CashForecast,
    ProductionRunInputs,
    SubsidyCustomer,
    SubsidyDecision,
    cac_ceilings,
    cash_forecast,
    delivery_subsidy_decision,
)

PAID_STATUSES = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)
# Events about an order (subject_type "order", whatever their type) may carry tags the order
# row does not: a drop (``drop_type``, from the drop engine), a subsidised delivery
# (``delivery_subsidised``, from fulfilment and memberships) and, on ``order.imported``, the
# product family of imported history. Any one event carrying a tag tags the order.
IMPORTED_PREFIX = "import:"  # checkout_reference of an order brought in by `telemetry import`


def _truthy(value: object) -> bool:
    # JSON true reads back as 'true' on PostgreSQL (->>) and as '1' on SQLite (json_extract).
    return str(value).lower() in ("true", "1")


def _epoch(values: Sequence[dt.datetime]) -> np.ndarray:
    return np.fromiter((int(v.timestamp()) for v in values), dtype=np.int64, count=len(values))


def load_purchase_log(session: Session, *, as_of: dt.datetime, currency: str = "GBP"
                      ) -> PurchaseLog:
    """Every paid order with a positive total placed up to ``as_of``, and the refunds paid
    out up to then. Orders in another currency than ``currency`` are left out (amounts of
    different currencies are never added)."""
    rows = session.execute(
        select(Order.id, Order.customer_id, Order.created_at, Order.total_amount,
               Order.fulfilment_path, Customer.acquisition_source, Customer.acquisition_campaign)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.status.in_(PAID_STATUSES), Order.total_amount > 0,
               Order.currency == currency, Order.created_at <= as_of)
        .order_by(Order.id)
    ).all()
    if rows:
        order_id, customer_id, created, total, path, source, campaign = map(list, zip(*rows))
    else:
        order_id = customer_id = created = total = path = source = campaign = []
    ids = np.array(order_id, dtype=np.int64)
    index = {oid: i for i, oid in enumerate(order_id)}

    # Main family of each order: the family of its largest share of the order's lines.
    family = [""] * len(order_id)
    best = [-1] * len(order_id)
    for oid, fam, amount in session.execute(
            select(OrderLine.order_id, OrderLine.product_family,
                   func.sum(OrderLine.line_total_amount))
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.status.in_(PAID_STATUSES), Order.total_amount > 0,
                   Order.created_at <= as_of)
            .group_by(OrderLine.order_id, OrderLine.product_family)):
        i = index.get(oid)
        amount = int(amount)  # SUM(bigint) is a Decimal on PostgreSQL
        if i is not None and (amount > best[i] or (amount == best[i] and fam < family[i])):
            family[i], best[i] = fam, amount

    drop_type = [""] * len(order_id)
    subsidised = np.zeros(len(order_id), dtype=np.bool_)
    payload = DomainEvent.payload
    for subject, tag, sub, fam in session.execute(
            select(DomainEvent.subject_id, payload["drop_type"].as_string(),
                   payload["delivery_subsidised"].as_string(),
                   payload[("product_families", 0)].as_string())
            .where(DomainEvent.subject_type == "order",
                   or_(payload["drop_type"].as_string().is_not(None),
                       payload["delivery_subsidised"].as_string().is_not(None),
                       DomainEvent.type == "order.imported"))):
        i = index.get(int(subject)) if subject.isdigit() else None
        if i is None:
            continue
        if tag:
            drop_type[i] = tag[:64]
        if sub is not None and _truthy(sub):
            subsidised[i] = True
        if fam and not family[i]:
            family[i] = fam

    refunds = session.execute(
        select(Refund.order_id, Order.customer_id, Refund.created_at, Refund.amount)
        .join(Order, Order.id == Refund.order_id)
        .where(Refund.status == RefundStatus.succeeded, Refund.currency == currency,
               Refund.created_at <= as_of)
    ).all()
    r_order, r_customer, r_at, r_amount = (map(list, zip(*refunds)) if refunds
                                           else ([], [], [], []))
    return PurchaseLog(
        customer_id=np.array(customer_id, dtype=np.int64), at=_epoch(created),
        amount=np.array(total, dtype=np.int64), order_id=ids,
        family=np.array(family, dtype=np.str_), fulfilment_path=np.array(path, dtype=np.str_),
        source=np.array(source, dtype=np.str_), campaign=np.array(campaign, dtype=np.str_),
        drop_type=np.array(drop_type, dtype=np.str_), subsidised=subsidised,
        refund_customer_id=np.array(r_customer, dtype=np.int64), refund_at=_epoch(r_at),
        refund_amount=np.array(r_amount, dtype=np.int64),
        refund_order_id=np.array(r_order, dtype=np.int64), currency=currency)


def load_customers(session: Session, *, as_of: dt.datetime, currency: str = "GBP",
                   windows: Sequence[int] = WINDOWS) -> tuple[PurchaseLog, Customers]:
    log = load_purchase_log(session, as_of=as_of, currency=currency)
    return log, summarise_customers(log, as_of=as_of, windows=windows)


def cohort_report(session: Session, *, as_of: dt.datetime, period: Period = "month",
                  by: Sequence[str] = (), currency: str = "GBP") -> CohortTable:
    _, customers = load_customers(session, as_of=as_of, currency=currency)
    return cohort_table(customers, period=period, by=by, currency=currency)


def curves_report(session: Session, *, as_of: dt.datetime, period: Period = "month",
                  by: Sequence[str] = (), step_days: int = 30, steps: int = 12,
                  currency: str = "GBP") -> CohortCurves:
    _, customers = load_customers(session, as_of=as_of, currency=currency)
    return cohort_curves(customers, period=period, by=by, step_days=step_days, steps=steps,
                         currency=currency)


# ------------------------------------------------------------------------------ decisions


def cac_report(session: Session, *, as_of: dt.datetime, gross_margin: float = DEFAULT_GROSS_MARGIN,
               target_ratio: float = DEFAULT_TARGET_RATIO, currency: str = "GBP"
               ) -> list[CacCeiling]:
    log, customers = load_customers(session, as_of=as_of, currency=currency)
    tagged = set(log.drop_type.tolist()) - {""}
    return cac_ceilings(value_by(customers, "drop_type", days=90), gross_margin=gross_margin,
                        target_ratio=target_ratio, tagged=tagged)


def subsidy_comparison(customers: Customers) -> list[SubsidyCustomer]:
    """Customers with 90 days behind them whose first order was delivered (a pop-up
    purchase has no delivery to subsidise), made comparable by the month of their first
    purchase and its fulfilment path."""
    observed = customers.observed(90)
    start, _ = period_bounds(customers.first_at, "month")
    path = customers.attributes["fulfilment"]
    subsidised = customers.attributes["subsidised"] == "yes"
    out = []
    for i in np.flatnonzero(observed & (path != "pop-up")):
        month = f"{np.datetime64(int(start[i]), 'D').astype('datetime64[M]')}"
        out.append(SubsidyCustomer(
            subsidised=bool(subsidised[i]), stratum=f"{month}|{path[i]}",
            retained=bool(customers.repeated[90][i]),
            value_90=int(customers.net_revenue[90][i])))
    return out


def subsidy_report(session: Session, *, as_of: dt.datetime, cost_per_subsidy: int,
                   gross_margin: float = DEFAULT_GROSS_MARGIN, confidence: float = 0.95,
                   currency: str = "GBP") -> SubsidyDecision:
    _, customers = load_customers(session, as_of=as_of, currency=currency)
    return delivery_subsidy_decision(subsidy_comparison(customers),
                                     cost_per_subsidy=cost_per_subsidy,
                                     gross_margin=gross_margin, confidence=confidence)


@dataclass(frozen=True)
class ShopDemand:
    """What the shop's tables say about demand for a production run."""

    members: int  # paying or trialing members now
    waitlist: int  # drop waitlist entries still waiting
    past_sell_through: list[int]  # units sold in each of the last windows, oldest first
    unit_price: int | None  # average unit price over those windows, minor units
    window_weeks: int


def shop_demand(session: Session, *, as_of: dt.datetime, family: str | None,
                window_weeks: int, windows: int = 3) -> ShopDemand:
    members = session.scalar(select(func.count()).select_from(Membership).where(
        Membership.status.in_((MembershipStatus.active, MembershipStatus.past_due,
                               MembershipStatus.trialing)))) or 0
    waitlist = session.scalar(select(func.count()).select_from(DropWaitlistEntry).where(
        DropWaitlistEntry.status == WaitlistStatus.waiting)) or 0
    sold, units_total, amount_total = [], 0, 0
    for k in range(windows, 0, -1):
        begin = as_of - dt.timedelta(weeks=window_weeks * k)
        end = begin + dt.timedelta(weeks=window_weeks)
        query = (select(func.coalesce(func.sum(OrderLine.quantity), 0),
                        func.coalesce(func.sum(OrderLine.line_total_amount), 0))
                 .join(Order, Order.id == OrderLine.order_id)
                 .where(Order.status.in_(PAID_STATUSES), Order.total_amount > 0,
                        Order.created_at >= begin, Order.created_at < end))
        if family:
            query = query.where(OrderLine.product_family == family)
        units, amount = session.execute(query).one()
        sold.append(int(units))
        units_total += int(units)
        amount_total += int(amount)
    price = (2 * amount_total + units_total) // (2 * units_total) if units_total else None
    return ShopDemand(members=int(members), waitlist=int(waitlist), past_sell_through=sold,
                      unit_price=price, window_weeks=window_weeks)


SELL_CURVE = (0.5, 0.25, 0.15, 0.1)  # open-sale shares per week: drops sell early


def production_forecast(
    session: Session, *, as_of: dt.datetime, family: str | None, unit_cost: int,
    unit_price: int | None, lead_time_weeks: int, member_uptake: float,
    waitlist_conversion: float, deposit_share: float = 0.5, safety_share: float = 0.0,
    refund_rate: float = 0.0, currency: str = "GBP",
) -> CashForecast:
    """The shop's demand (members now, drop waitlist, units sold in each of the last three
    sell windows) into the pure forecast; the run is ordered next Monday."""
    curve = SELL_CURVE
    demand = shop_demand(session, as_of=as_of, family=family, window_weeks=len(curve))
    price = unit_price if unit_price is not None else demand.unit_price
    if price is None:
        raise InvalidInput("no recent sales to take a unit price from: pass unit_price",
                           field="unit_price")
    monday = as_of.date() + dt.timedelta(days=7 - as_of.weekday())
    return cash_forecast(ProductionRunInputs(
        members=demand.members, member_uptake=member_uptake, waitlist=demand.waitlist,
        waitlist_conversion=waitlist_conversion, past_sell_through=demand.past_sell_through,
        unit_cost=unit_cost, unit_price=price, lead_time_weeks=lead_time_weeks, start=monday,
        deposit_share=deposit_share, sell_curve=curve, refund_rate=refund_rate,
        safety_share=safety_share, currency=currency))
