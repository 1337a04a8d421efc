"""Order reads, and the order-state writes the checkout flow is built from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import InvalidInput, InvalidState, NotFound
from dropline.events.service import list_events
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import TIMELINE_LABELS, OrderStage, order_event_payload
from dropline.payments.models import Payment, PaymentStatus, Refund, RefundStatus


@dataclass(frozen=True)
class TimelineEntry:
    label: str
    event_type: str
    at: datetime


@dataclass(frozen=True)
class OrderDetail:
    order: Order
    lines: list[OrderLine]
    payments: list[Payment]
    refunds: list[Refund]


def get_order(session: Session, order_id: int, *, customer_id: int | None = None) -> Order:
    """With ``customer_id``, another customer's order is reported as not found."""
    order = session.get(Order, order_id)
    if order is None or (customer_id is not None and order.customer_id != customer_id):
        raise NotFound(f"order {order_id} not found")
    return order


def order_detail(session: Session, order: Order) -> OrderDetail:
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                            .order_by(OrderLine.id)).all()
    payments = session.scalars(select(Payment).where(Payment.order_id == order.id)
                               .order_by(Payment.id)).all()
    refunds = session.scalars(select(Refund).where(Refund.order_id == order.id)
                              .order_by(Refund.id)).all()
    return OrderDetail(order, list(lines), list(payments), list(refunds))


def list_orders(
    session: Session, *, customer_id: int | None = None, status: OrderStatus | None = None,
    stage: OrderStage | None = None, limit: int = 50, offset: int = 0,
) -> list[Order]:
    query = select(Order).order_by(Order.id.desc())
    if stage is not None:
        query = query.where(Order.stage == stage)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if status is not None:
        query = query.where(Order.status == status)
    return list(session.scalars(query.limit(limit).offset(offset)))


def find_by_checkout_reference(session: Session, reference: str) -> Order | None:
    return session.scalar(select(Order).where(Order.checkout_reference == reference))


def count_orders(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Order)) or 0


def order_payload(session: Session, order: Order,
                  families: Iterable[str] | None = None) -> dict[str, Any]:
    """What telemetry cuts by, carried on every order event; the families are read from the
    order's lines unless the caller has them at hand."""
    if families is None:
        families = session.scalars(
            select(OrderLine.product_family).where(OrderLine.order_id == order.id))
    return order_event_payload(
        order_id=order.id, total_amount=order.total_amount, currency=order.currency,
        acquisition_source=order.acquisition_source,
        acquisition_campaign=order.acquisition_campaign, product_families=families,
        fulfilment_path=order.fulfilment_path)


def open_refund(session: Session, *, clock: Clock, order_id: int, amount: int, reason: str,
                actor: str, idempotency_key: str) -> Refund:
    """The first half of every refund (``flows.refund_order``, cancellations): the order's
    refunded total is raised by one conditional UPDATE whose row count decides, so it never
    exceeds the order total, and a pending ``Refund`` is written for the provider call after
    commit."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if order.status not in (OrderStatus.paid, OrderStatus.partially_refunded):
        raise InvalidState(f"order {order_id} is {order.status.value}; only paid orders can be "
                           "refunded")
    if amount <= 0:
        raise InvalidInput("refund amount must be positive", field="amount")
    payment = session.scalar(select(Payment).where(Payment.order_id == order_id,
                                                   Payment.status == PaymentStatus.succeeded))
    if payment is None or payment.provider_ref is None:
        raise InvalidState(f"order {order_id} has no captured payment")
    raised = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.refunded_amount + amount <= Order.total_amount)
        .values(refunded_amount=Order.refunded_amount + amount)
    ).rowcount
    if raised != 1:
        remaining = order.total_amount - order.refunded_amount
        raise InvalidInput(f"refund exceeds what is left to refund ({remaining} minor units of "
                           f"{order.currency})", field="amount", remaining=remaining)
    session.refresh(order)
    order.status = (OrderStatus.refunded if order.refunded_amount == order.total_amount
                    else OrderStatus.partially_refunded)
    refund = Refund(order_id=order.id, payment_id=payment.id, amount=amount,
                    currency=order.currency, reason=reason, status=RefundStatus.pending,
                    idempotency_key=idempotency_key, actor=actor, created_at=clock.now())
    session.add(refund)
    session.flush()
    return refund


def order_timeline(session: Session, order_id: int) -> list[TimelineEntry]:
    """The order's events a shopper is shown, oldest first (by when they happened: history
    imported later has later ids)."""
    return sorted((TimelineEntry(TIMELINE_LABELS[event.type], event.type, event.occurred_at)
                   for event in list_events(session, subject_type="order",
                                            subject_id=str(order_id), limit=500)
                   if event.type in TIMELINE_LABELS), key=lambda entry: entry.at)
