"""Reads the facts the pure signals (``risk.rules``) score: the customer's history, the
brand's norm, accounts linked by card, address or device, and one return's own facts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.drops.models import Drop, DropHold, DropVariant, HoldSource
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import Payment, Refund, RefundStatus
from dropline.risk.models import Chargeback, ReturnRequest, ReturnStatus, SerialUnit
from dropline.risk.rules import BrandNorm, CustomerHistory, LinkedAccount, ReturnFacts, Thresholds

PAID = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)
COUNTED = [s for s in ReturnStatus if s is not ReturnStatus.denied]


def _returned_value():  # type: ignore[no-untyped-def]
    return func.coalesce(func.sum(OrderLine.unit_price_amount * ReturnRequest.quantity), 0)


def customer_history(session: Session, *, customer_id: int, now: datetime, t: Thresholds,
                     exclude_return_id: int | None = None) -> CustomerHistory:
    orders, value = session.execute(
        select(func.count(), func.coalesce(func.sum(Order.total_amount), 0))
        .where(Order.customer_id == customer_id, Order.status.in_(PAID))).one()
    returns_q = (select(func.count(), _returned_value()).select_from(ReturnRequest)
                 .join(OrderLine, OrderLine.id == ReturnRequest.order_line_id)
                 .where(ReturnRequest.customer_id == customer_id,
                        ReturnRequest.status.in_(COUNTED)))
    if exclude_return_id is not None:
        returns_q = returns_q.where(ReturnRequest.id != exclude_return_id)
    returns, returned_value = session.execute(returns_q).one()
    recent = session.scalar(
        select(func.count()).select_from(Refund).join(Order, Order.id == Refund.order_id)
        .where(Order.customer_id == customer_id, Refund.status == RefundStatus.succeeded,
               Refund.created_at >= now - timedelta(days=t.velocity_days),
               Refund.created_at <= now)) or 0
    chargebacks = session.scalar(select(func.count()).select_from(Chargeback)
                                 .where(Chargeback.customer_id == customer_id)) or 0
    return CustomerHistory(orders=orders, order_value=int(value), returns=returns,
                           returned_value=int(returned_value), refunds_recent=recent,
                           chargebacks=chargebacks,
                           bypassed_queue_orders=len(bypassed_orders(session,
                                                                     customer_id=customer_id)))


def bypassed_orders(session: Session, *, customer_id: int) -> set[int]:
    """The customer's orders that took drop units without the waiting room (the rule of
    ``planning.drop_report``): a direct hold on a drop that has a queue, or drop variants bought
    during the drop with no hold at all."""
    direct = set(session.scalars(
        select(DropHold.order_id).join(Drop, Drop.id == DropHold.drop_id)
        .where(DropHold.customer_id == customer_id, DropHold.source == HoldSource.direct,
               Drop.queue_enabled.is_(True), DropHold.order_id.is_not(None))))
    outside = set(session.scalars(
        select(Order.id).join(OrderLine, OrderLine.order_id == Order.id)
        .join(DropVariant, DropVariant.variant_id == OrderLine.variant_id)
        .join(Drop, Drop.id == DropVariant.drop_id)
        .outerjoin(DropHold, DropHold.order_id == Order.id)
        .where(Order.customer_id == customer_id, Order.status.in_(PAID),
               Order.created_at >= Drop.starts_at, Order.created_at < Drop.ends_at,
               DropHold.id.is_(None))))
    return {order_id for order_id in direct | outside if order_id is not None}


def brand_norm(session: Session) -> BrandNorm:
    orders = session.scalar(select(func.count()).select_from(Order)
                            .where(Order.status.in_(PAID))) or 0
    returns, value = session.execute(
        select(func.count(), _returned_value()).select_from(ReturnRequest)
        .join(OrderLine, OrderLine.id == ReturnRequest.order_line_id)
        .where(ReturnRequest.status.in_(COUNTED))).one()
    return BrandNorm(return_rate=returns / orders if orders else 0.0,
                     average_return_value=int(value) // returns if returns else 0)


def _address_key(address: dict) -> tuple[str, str]:  # type: ignore[type-arg]
    def norm(text: object) -> str:
        return "".join(str(text or "").lower().split())
    return norm(address.get("line1")), norm(address.get("postcode"))


def linked_accounts(session: Session, *, customer_id: int) -> list[LinkedAccount]:
    """Other customers sharing a card fingerprint, a shipping address (line 1 + postcode) or
    a device id seen on a return request."""
    links: dict[int, str] = {}
    cards = set(session.scalars(
        select(Payment.card_fingerprint).join(Order, Order.id == Payment.order_id)
        .where(Order.customer_id == customer_id, Payment.card_fingerprint != "")))
    if cards:
        for other in session.scalars(
                select(Order.customer_id).join(Payment, Payment.order_id == Order.id)
                .where(Payment.card_fingerprint.in_(cards), Order.customer_id != customer_id)
                .distinct()):
            links.setdefault(other, "card")
    own = list(session.scalars(
        select(Order.shipping_address).where(Order.customer_id == customer_id)))
    addresses = {_address_key(a) for a in own} - {("", "")}
    postcodes = sorted({str(a.get("postcode")) for a in own if a.get("postcode")})
    if postcodes:
        # Narrow by postcode in SQL; compare the normalised line 1 and postcode in Python.
        for other, address in session.execute(
                select(Order.customer_id, Order.shipping_address)
                .where(Order.customer_id != customer_id,
                       Order.shipping_address["postcode"].as_string().in_(postcodes))):
            if _address_key(address) in addresses:
                links.setdefault(other, "address")
    devices = set(session.scalars(select(ReturnRequest.device_id).where(
        ReturnRequest.customer_id == customer_id, ReturnRequest.device_id != "")))
    if devices:
        for other in session.scalars(
                select(ReturnRequest.customer_id).where(ReturnRequest.device_id.in_(devices),
                                                        ReturnRequest.customer_id != customer_id)
                .distinct()):
            links.setdefault(other, "device")
    if not links:
        return []
    ids = sorted(links)
    returns = dict(session.execute(
        select(ReturnRequest.customer_id, func.count()).where(
            ReturnRequest.customer_id.in_(ids), ReturnRequest.status.in_(COUNTED))
        .group_by(ReturnRequest.customer_id)).all())
    disputes = dict(session.execute(
        select(Chargeback.customer_id, func.count()).where(Chargeback.customer_id.in_(ids))
        .group_by(Chargeback.customer_id)).all())
    return [LinkedAccount(cid, links[cid], returns.get(cid, 0), disputes.get(cid, 0))
            for cid in ids]


def return_facts(session: Session, *, ret: ReturnRequest, line: OrderLine,
                 order: Order) -> ReturnFacts:
    sold_here = tuple(sorted(session.scalars(select(SerialUnit.serial).where(
        SerialUnit.order_line_id == line.id))))
    unit = None
    if ret.serial_received:
        unit = session.scalar(select(SerialUnit).where(SerialUnit.serial == ret.serial_received))
    return ReturnFacts(
        value=line.unit_price_amount * ret.quantity, family=line.product_family,
        reason=ret.reason, purchased_at=order.paid_at or order.created_at,
        requested_at=ret.requested_at, sold_grade=line.condition_grade.value,
        received_grade=ret.received_grade, serial_received=ret.serial_received,
        serials_sold_on_line=sold_here,
        serial_known=unit is not None and unit.order_id is not None,
        serial_sold_elsewhere=unit is not None and unit.order_id not in (None, order.id))

