"""The order lifecycle's writes (``orders.rules`` holds its state machine): session first,
keyword-only arguments; flush, never commit. The flows that own the transactions (and the
refund after a cancellation) are in ``orders.flows``.

Every stage move is one conditional UPDATE on the stage the caller read (``move_stage``): two
concurrent movers of one order cannot both win, and the loser gets the 409 with the stage it
lost to. Each move records its ``order.<stage>`` event (and so its webhooks and mails) in the
same transaction, and the audit trail records the stage change (``Order`` is audited)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropline.catalog.service import return_stock
from dropline.clock import Clock
from dropline.errors import InvalidInput, InvalidState
from dropline.events.service import record_event
from dropline.orders.models import Order, OrderLine, OrderStatus, Shipment, ShipmentLine
from dropline.orders.policy import CheckoutPolicy
from dropline.orders.rules import (
    BEFORE_PACKING,
    LineCancel,
    StageConflict,
    check_before_packing,
    next_stage,
    partial_cancel_amount,
)
from dropline.orders.service import order_payload

__all__ = ["CAPTURED", "cancel_lines", "cancel_whole", "change_address", "move_stage"]

# Payment states in which the goods may move: the money was taken (some may be refunded).
CAPTURED = frozenset({OrderStatus.paid, OrderStatus.partially_refunded})


def _require_captured(order: Order) -> None:
    if order.status not in CAPTURED:
        raise InvalidState(f"order {order.id} is {order.status.value}; only an order whose "
                           "payment was taken can be fulfilled or cancelled",
                           current_stage=order.stage.value, payment_status=order.status.value)


def record_order_event(session: Session, *, clock: Clock, order: Order, type: str,
                       **extra: Any) -> None:
    record_event(session, clock=clock, type=type, subject_type="order", subject_id=order.id,
                 customer_id=order.customer_id,
                 payload={**order_payload(session, order), "stage": order.stage.value, **extra})


def move_stage(session: Session, *, clock: Clock, order: Order, action: str,
               **detail: Any) -> Order:
    """Moves ``order`` by ``action`` (a key of ``rules.TRANSITIONS``) and records
    ``order.<action>`` with ``detail``; raises StageConflict (409, with the current stage) when
    the state machine or a concurrent mover refuses."""
    if action == "allocated":
        _require_captured(order)
    before = order.stage
    target = next_stage(before, action)
    moved = session.execute(
        update(Order).where(Order.id == order.id, Order.stage == before).values(stage=target)
    ).rowcount
    session.refresh(order)
    if moved != 1:  # another transaction moved it first: report the stage it moved it to
        next_stage(order.stage, action)  # raises with the current stage if now illegal
        raise StageConflict(f"the order moved to {order.stage.value} meanwhile; try again",
                            current_stage=order.stage.value, action=action)
    record_order_event(session, clock=clock, order=order, type=f"order.{action}",
                       from_stage=before.value, **detail)
    return order


def _hold_before_packing(session: Session, order: Order, what: str) -> None:
    """Locks the order row (PostgreSQL) while it is before packing, so a concurrent pack or
    cancellation waits for this change and then sees it; raises StageConflict otherwise."""
    check_before_packing(order.stage, what)
    held = session.execute(
        update(Order).where(Order.id == order.id, Order.stage.in_(BEFORE_PACKING))
        .values(stage=Order.stage)).rowcount
    if held != 1:
        session.refresh(order)
        check_before_packing(order.stage, what)


def change_address(session: Session, *, clock: Clock, order: Order,
                   address: Mapping[str, Any]) -> Order:
    """A new shipping address, before packing. A hub-window order is refused: its place in
    the van was priced and booked for the old address."""
    _require_captured(order)
    if order.fulfilment_path == "hub-window":
        raise InvalidState("this order is booked into a delivery window for its address; "
                           "cancel it and order again to deliver elsewhere",
                           current_stage=order.stage.value)
    _hold_before_packing(session, order, "changing the address")
    session.refresh(order)
    order.shipping_address = dict(address)
    session.flush()
    record_order_event(session, clock=clock, order=order, type="order.address_changed",
                       postcode=str(address.get("postcode", "")))
    return order


def _lines(session: Session, order: Order) -> list[OrderLine]:
    return list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                .order_by(OrderLine.id)))


def _return_units(session: Session, order: Order, line: OrderLine, quantity: int) -> None:
    """Cancelled units go back to the stock of the location they were taken from: the
    line's shipment's once allocated, else the one checkout took them from."""
    location_id = session.scalar(
        select(Shipment.location_id).join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
        .where(ShipmentLine.order_line_id == line.id)) or order.location_id
    if location_id is not None and quantity > 0:
        return_stock(session, location_id=location_id, variant_id=line.variant_id,
                     quantity=quantity)


def cancel_whole(session: Session, *, clock: Clock, policy: CheckoutPolicy, order: Order,
                 reason: str) -> int:
    """Cancels the order before packing: every unit not yet cancelled goes back to stock, a
    hub-window order's place in its window is freed. Returns what is left to refund (the
    caller opens that refund in this transaction). The stage move decides a race: of two
    concurrent cancellations one moves the order, the other gets 409."""
    next_stage(order.stage, "cancelled")  # a cancelled order says so, not "refunded"
    _require_captured(order)
    move_stage(session, clock=clock, order=order, action="cancelled", reason=reason)
    for line in _lines(session, order):
        session.refresh(line)  # read after the stage lock: a partial cancel may just have run
        left = line.quantity - line.cancelled_quantity
        if left:
            session.execute(update(OrderLine).where(OrderLine.id == line.id)
                            .values(cancelled_quantity=OrderLine.quantity))
            _return_units(session, order, line, left)
    if order.fulfilment_path == "hub-window":
        policy.cancel_window(session, clock=clock, order_id=order.id)
    session.refresh(order)
    return order.total_amount - order.refunded_amount


def cancel_lines(session: Session, *, clock: Clock, policy: CheckoutPolicy, order: Order,
                 quantities: Mapping[int, int], reason: str) -> int:
    """Cancels some units of some lines (order line id -> units) before packing; returns what
    to refund for them. Cancelling every unit left cancels the whole order (and refunds the
    delivery too)."""
    check_before_packing(order.stage, "cancelling some items")
    _require_captured(order)
    if not quantities:
        raise InvalidInput("name at least one line and quantity to cancel", field="lines")
    _hold_before_packing(session, order, "cancelling some items")
    lines = {line.id: line for line in _lines(session, order)}
    unknown = sorted(set(quantities) - set(lines))
    if unknown:
        raise InvalidInput(f"order {order.id} has no line {unknown[0]}", field="lines")
    for line in lines.values():
        session.refresh(line)
    session.refresh(order)
    left_after = sum(line.quantity - line.cancelled_quantity - quantities.get(line.id, 0)
                     for line in lines.values())
    amount = partial_cancel_amount(
        [LineCancel(line_id, lines[line_id].unit_price_amount, lines[line_id].quantity,
                    lines[line_id].cancelled_quantity, quantity,
                    lines[line_id].discount_amount)
         for line_id, quantity in sorted(quantities.items())],
        refundable=order.total_amount - order.refunded_amount)
    if left_after == 0:
        return cancel_whole(session, clock=clock, policy=policy, order=order, reason=reason)
    for line_id, quantity in sorted(quantities.items()):
        raised = session.execute(
            update(OrderLine).where(OrderLine.id == line_id,
                                    OrderLine.cancelled_quantity + quantity <= OrderLine.quantity)
            .values(cancelled_quantity=OrderLine.cancelled_quantity + quantity)).rowcount
        if raised != 1:  # unreachable while the order row is held; kept as the cap's guard
            raise InvalidInput(f"line {line_id} changed meanwhile; try again", field="lines")
        _return_units(session, order, lines[line_id], quantity)
    record_order_event(session, clock=clock, order=order, type="order.lines_cancelled",
                       reason=reason, refund_amount=amount,
                       lines=[{"line_id": line_id, "sku": lines[line_id].sku,
                               "quantity": quantity}
                              for line_id, quantity in sorted(quantities.items())])
    return amount
