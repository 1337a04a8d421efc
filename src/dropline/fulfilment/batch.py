"""Deciding the paid orders nobody decided: drop purchases once their drop has ended, counter
sales, membership consumables, and orders placed before decisions were recorded. Every paid
order ends with one row in ``fulfilment_decisions`` (path, location, cost, the deciding rule)
and an allocation: its units held at the decided location (and, for a hub window, a live
booking in that window).

An order still at ``paid`` is decided by the same rules as the checkout
(``service.gather_options`` + ``rules.decide``). Its units, taken at checkout where the order
was placed, are first given back there so that location competes on equal terms; they are then
taken where the decision says. Orders are decided one after another in one batch, so each sees
the windows the previous ones booked (capacity-aware). A hub out of stock or a window full is
not skipped silently: that option is excluded with its reason, the rules run again, and the
recorded rule and explanation name the fallback.

An order already past ``paid`` (allocated, shipped, delivered), refunded in full, or sold over a
pop-up counter keeps where it went: its decision records that, under a rule that says so.

Idempotent: the order row is locked (``FOR UPDATE`` on PostgreSQL) and the decision looked for
again before anything is written, and ``fulfilment_decisions.order_id`` is unique, so two
workers decide an order once; the loser's transaction rolls back whole."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dropline.catalog.service import return_stock, take_stock
from dropline.clock import Clock
from dropline.db import Database
from dropline.errors import DomainError
from dropline.events.service import record_event
from dropline.fulfilment import rules as R
from dropline.fulfilment.models import (
    BookingStatus,
    FulfilmentDecisionRow,
    FulfilmentSite,
    WindowBooking,
)
from dropline.fulfilment.ports import Geocoder
from dropline.fulfilment.service import (
    CustomerFacts,
    Destination,
    LineRequest,
    book_window,
    gather_options,
    load_rules,
    order_weight,
    record_decision,
)
from dropline.locations.models import Location, LocationKind
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import OrderStage

__all__ = ["BatchReport", "CustomerFactsFor", "HeldBack", "decide_order",
           "decide_undecided_orders", "record_counter_sale", "undecided_order_ids"]

log = logging.getLogger("dropline.fulfilment")

# Who the shopper is to the rules (member, delivery subsidy): the root supplies it from
# memberships, which fulfilment does not import.
CustomerFactsFor = Callable[[Session, int, datetime], CustomerFacts]
# Orders not to decide yet (drop purchases while their drop is live): from the root, which
# knows drops (drops import fulfilment, so fulfilment cannot import drops).
HeldBack = Callable[[Session, datetime], set[int]]

MAX_FALLBACKS = 5
COUNTER_RULE = "counter sale: collected at the pop-up"
AS_FULFILLED_RULE = "already past paid: recorded where it was fulfilled"
REFUNDED_RULE = "refunded before fulfilment: recorded where its units were"
KEPT_RULE = "no option by the rules: kept where its units were"


@dataclass
class BatchReport:
    decided: dict[str, int] = field(default_factory=dict)  # path -> orders
    fallbacks: list[int] = field(default_factory=list)  # orders decided after a fallback
    skipped: list[int] = field(default_factory=list)  # decided meanwhile by another worker

    @property
    def total(self) -> int:
        return sum(self.decided.values())


def undecided_order_ids(session: Session, *, at: datetime,
                        held_back: HeldBack | None = None, limit: int = 5000) -> list[int]:
    """Paid orders with no decision, oldest first, less those held back."""
    ids = list(session.scalars(
        select(Order.id).where(
            Order.paid_at.is_not(None),
            ~exists().where(FulfilmentDecisionRow.order_id == Order.id))
        .order_by(Order.id).limit(limit)))
    if held_back is not None and ids:
        later = held_back(session, at)
        ids = [order_id for order_id in ids if order_id not in later]
    return ids


def decide_undecided_orders(db: Database, *, clock: Clock, geocoder: Geocoder,
                            customer_facts: CustomerFactsFor | None = None,
                            held_back: HeldBack | None = None) -> BatchReport:
    """The background job: every undecided paid order, each in its own transaction (one bad
    order never holds back the others), in one pass so capacity is shared fairly by age."""
    report = BatchReport()
    with db.transaction() as session:
        ids = undecided_order_ids(session, at=clock.now(), held_back=held_back)
    for order_id in ids:
        try:
            with db.transaction() as session:
                row = decide_order(session, clock=clock, order_id=order_id, geocoder=geocoder,
                                   customer_facts=customer_facts)
                outcome = None if row is None else (row.path, "fallback" in row.rule)
        except IntegrityError:  # the other worker's decision committed first
            outcome = None
        except OperationalError as exc:  # e.g. a deadlock with another worker: next run
            log.warning("order %s not decided this run: %s", order_id, exc)
            continue
        except DomainError as exc:
            log.warning("order %s not decided: %s", order_id, exc)
            continue
        if outcome is None:
            report.skipped.append(order_id)
            continue
        path, fell_back = outcome
        report.decided[path] = report.decided.get(path, 0) + 1
        if fell_back:
            report.fallbacks.append(order_id)
    return report


def decide_order(session: Session, *, clock: Clock, order_id: int, geocoder: Geocoder,
                 customer_facts: CustomerFactsFor | None = None) -> FulfilmentDecisionRow | None:
    """Decides and allocates one paid order; None when it is decided already (or unpaid)."""
    order = session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or order.paid_at is None:
        return None
    if session.scalar(select(FulfilmentDecisionRow.id).where(
            FulfilmentDecisionRow.order_id == order_id)) is not None:
        return None
    if order.fulfilment_path == "pop-up":
        return _record_as_is(session, clock=clock, order=order, rule=COUNTER_RULE,
                             why="sold over the counter; the shopper took it away")
    if order.stage is not OrderStage.paid:
        return _record_as_is(session, clock=clock, order=order, rule=AS_FULFILLED_RULE,
                             why=f"the order was {order.stage.value} before it was decided")
    if order.status is OrderStatus.refunded:
        return _record_as_is(session, clock=clock, order=order, rule=REFUNDED_RULE,
                             why="refunded in full; nothing to send")
    return _decide_by_rules(session, clock=clock, order=order, geocoder=geocoder,
                            customer_facts=customer_facts)


def record_counter_sale(session: Session, *, clock: Clock,
                        order: Order) -> FulfilmentDecisionRow:
    """The decision of a sale over a pop-up's counter, written with the sale: the shopper takes
    the units from the pop-up's own stock, so there is nothing to choose."""
    return _record_as_is(session, clock=clock, order=order, rule=COUNTER_RULE,
                         why="sold over the counter; the shopper took it away")


def _live_lines(session: Session, order_id: int) -> list[OrderLine]:
    return [line for line in session.scalars(
        select(OrderLine).where(OrderLine.order_id == order_id)
        .order_by(OrderLine.variant_id, OrderLine.id))
        if line.quantity - line.cancelled_quantity > 0]


def _destination(order: Order, geocoder: Geocoder) -> Destination | None:
    address = order.shipping_address or {}
    postcode = str(address.get("postcode") or "").strip()
    point = geocoder.locate(postcode) if postcode else None
    return None if point is None else Destination(point, label=postcode.upper()[:20],
                                                  approximate=True)


def _decide_by_rules(session: Session, *, clock: Clock, order: Order, geocoder: Geocoder,
                     customer_facts: CustomerFactsFor | None) -> FulfilmentDecisionRow:
    now = clock.now()
    lines = _live_lines(session, order.id)
    origin = order.location_id
    # Give the order's units back where checkout took them, so that location is weighed like
    # any other; they are taken again where the decision falls (lines in variant order).
    if origin is not None:
        for line in lines:
            return_stock(session, location_id=origin, variant_id=line.variant_id,
                         quantity=line.quantity - line.cancelled_quantity)
    requests = [LineRequest(line.variant_id, line.quantity - line.cancelled_quantity)
                for line in lines]
    destination = _destination(order, geocoder)
    facts = (customer_facts(session, order.customer_id, now) if customer_facts is not None
             else CustomerFacts())
    option_set = gather_options(session, lines=requests, destination=destination, at=now,
                                customer=facts)
    rules = load_rules(session)
    options: list[R.Option] = list(option_set.options)
    fallbacks: list[str] = []
    for _ in range(MAX_FALLBACKS):
        decision = R.decide(option_set.facts, options, rules, option_set.currency)
        if decision is None:
            break
        chosen = decision.chosen
        problem = _allocate(session, clock=clock, order=order, option=chosen, lines=lines,
                            destination=destination)
        if problem is None:
            if destination is None:
                postcode = str((order.shipping_address or {}).get("postcode") or "")[:12]
                decision = replace(decision, explanation=(
                    f"{decision.explanation} Address not located (postcode {postcode!r} "
                    "unknown to the geocoder): central shipping, priced at the farthest "
                    "zone."))
            if fallbacks:
                decision = replace(
                    decision, rule=f"{decision.rule} (fallback: {'; '.join(fallbacks)})",
                    explanation=f"{decision.explanation} Fell back: {'; '.join(fallbacks)}.")
            row = record_decision(session, clock=clock, decision=decision,
                                  order_id=order.id, customer_id=order.customer_id)
            # The order.created event keeps the path the order was placed with; this one says
            # where it goes now (telemetry and webhooks read both).
            record_event(session, clock=clock, type="order.fulfilment_decided",
                         subject_type="order", subject_id=order.id,
                         customer_id=order.customer_id,
                         payload={"order_id": order.id, "fulfilment_path": chosen.path,
                                  "location_id": chosen.location_id,
                                  "window_id": chosen.window_id, "rule": row.rule,
                                  "previous_fulfilment_path": order.fulfilment_path,
                                  "previous_location_id": origin})
            order.location_id = chosen.location_id
            order.fulfilment_path = chosen.path
            return row
        fallbacks.append(f"{chosen.location_code} {problem}")
        options = [replace(o, excluded=problem) if _same(o, chosen) else o for o in options]
    # Nothing the rules allow could take it: keep the units where they were, and say why.
    if origin is not None:
        for line in lines:
            if not take_stock(session, location_id=origin, variant_id=line.variant_id,
                              quantity=line.quantity - line.cancelled_quantity):
                raise DomainError(f"order {order.id}: its units could not be put back")
    reasons = "; ".join(fallbacks) or "; ".join(
        sorted({f"{o.location_code}: {o.excluded}" for o in options if o.excluded}))
    return _record_as_is(session, clock=clock, order=order, rule=KEPT_RULE,
                         why=reasons or "no fulfilment site is configured")


def _same(a: R.Option, b: R.Option) -> bool:
    return (a.path, a.location_id, a.window_id) == (b.path, b.location_id, b.window_id)


def _allocate(session: Session, *, clock: Clock, order: Order, option: R.Option,
              lines: Sequence[OrderLine], destination: Destination | None) -> str | None:
    """Takes the units at the option's location and books its window; the reason it cannot,
    with everything it did undone (a savepoint), or None."""
    savepoint = session.begin_nested()
    for line in lines:
        if not take_stock(session, location_id=option.location_id, variant_id=line.variant_id,
                          quantity=line.quantity - line.cancelled_quantity):
            savepoint.rollback()
            return f"out of stock ({line.sku})"
    if option.path == "hub-window" and option.window_id is not None:
        if destination is None:
            savepoint.rollback()
            return "no address to deliver to"
        try:
            book_window(session, clock=clock, window_id=option.window_id, order_id=order.id,
                        destination=destination, weight_grams=order_weight(session, order.id))
        except DomainError as exc:  # full, or past its cutoff since the options were read
            savepoint.rollback()
            return str(exc)
    savepoint.commit()
    return None


def _record_as_is(session: Session, *, clock: Clock, order: Order, rule: str,
                  why: str) -> FulfilmentDecisionRow:
    """The decision for an order whose place is settled already: where its units are."""
    location_id = order.location_id
    if location_id is None:
        location_id = session.scalar(select(Location.id).where(
            Location.kind == LocationKind.central_warehouse).order_by(Location.id).limit(1))
    if location_id is None:
        raise DomainError(f"order {order.id} has no location and there is no warehouse")
    handling = session.scalar(select(FulfilmentSite.handling_amount).where(
        FulfilmentSite.location_id == location_id)) or 0
    window_id = session.scalar(select(WindowBooking.window_id).where(
        WindowBooking.order_id == order.id, WindowBooking.status == BookingStatus.booked))
    code = session.scalar(select(Location.code).where(Location.id == location_id))
    row = FulfilmentDecisionRow(
        order_id=order.id, customer_id=order.customer_id, path=order.fulfilment_path,
        location_id=location_id, window_id=window_id, cost_amount=int(handling),
        central_cost_amount=None, hub_cost_amount=None, rule=rule[:200],
        explanation=(f"{order.fulfilment_path} from {code} (handling {handling} minor units): "
                     f"{why}. Decided by: {rule}.")[:2000],
        decided_at=clock.now())
    session.add(row)
    session.flush()
    return row
