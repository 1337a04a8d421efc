"""What a payment provider's events (Stripe webhooks, ``payments.provider.ProviderEvent``) do to
the shop: each is stored once by its id and drives the payment it names, in one transaction.

    payment_intent.succeeded       a pending payment (3-D Secure done in the page) is settled
                                   paid, as checkout settles its own
    payment_intent.payment_failed  a pending payment is settled declined and its units go back
                                   where they came from (cart stock, drop, pop-up)
    charge.refunded                a refund made outside Dropline (the Stripe dashboard) is
                                   recorded on the order, up to what Stripe reports refunded
    charge.dispute.created         a chargeback is recorded on the order (the risk domain's
                                   dispute record, which its scoring reads)

A repeated delivery finds its event row and changes nothing; events arriving out of order are
harmless because a payment only ever moves out of pending once (the first decisive event
wins) and refunds are recorded up to Stripe's cumulative figure. It composes orders, drops and
risk, so it sits beside them rather than inside one of them.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.db import Database
from dropline.drops.service import return_units_of_order
from dropline.events.service import record_event
from dropline.orders.flows import (
    PaymentFailedHook,
    release_cart_order,
    return_cart_stock,
    settle_reported_payment,
)
from dropline.orders.models import Order, OrderStatus
from dropline.orders.policy import CheckoutPolicy
from dropline.payments.models import (
    Payment,
    PaymentStatus,
    ProviderEventRecord,
    Refund,
    RefundStatus,
)
from dropline.payments.provider import (
    ChargeResult,
    PaymentProvider,
    ProviderEvent,
    ProviderUnavailable,
)
from dropline.risk.returns import record_chargeback

__all__ = ["apply_provider_event", "settle_from_provider", "settle_reported"]
log = logging.getLogger(__name__)


def apply_provider_event(db: Database, *, clock: Clock, provider_name: str,
                         event: ProviderEvent, policy: CheckoutPolicy) -> str:
    """Stores the event once and applies it; returns what it did (``repeat`` for an event
    already stored)."""
    with db.transaction() as session:
        record = ProviderEventRecord(provider=provider_name, event_id=event.id[:100],
                                     type=event.type[:64],
                                     payment_reference=event.payment_reference[:64],
                                     outcome="pending", received_at=clock.now())
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
        except IntegrityError:  # delivered before (or by a concurrent delivery)
            return "repeat"
        record.outcome = _apply(session, clock=clock, provider_name=provider_name,
                                event=event, policy=policy)
        return record.outcome


def settle_from_provider(db: Database, *, clock: Clock, provider: PaymentProvider,
                         order_id: int, policy: CheckoutPolicy) -> str:
    """Settles the order's pending payment by what the provider says of its charge
    (``charge_status``), as the provider's event would: what the shopper's return to the order
    does after authenticating with their bank, in the page or on the bank's page. Never on the
    shopper's word (a return URL's query is not read), never charging; a payment already
    settled, not yet sent, or still undecided is left as it is. Returns what it did."""
    with db.transaction() as session:
        payment = session.scalar(select(Payment).where(Payment.order_id == order_id)
                                 .order_by(Payment.id.desc()).limit(1))
        if payment is None or payment.status is not PaymentStatus.pending:
            return "already-settled"
        reference = payment.provider_ref
    if not reference:
        return "not-charged"
    try:
        result = provider.charge_status(reference)
    except ProviderUnavailable:
        return "provider-unavailable"
    if result is None:
        return "undecided"
    with db.transaction() as session:
        payment = session.scalar(select(Payment).where(Payment.provider_ref == reference)
                                 .order_by(Payment.id.desc()).limit(1))
        assert payment is not None
        return settle_reported(session, clock=clock, provider_name=provider.name,
                               payment=payment, result=result, policy=policy)


def settle_reported(session: Session, *, clock: Clock, provider_name: str, payment: Payment,
                    result: ChargeResult, policy: CheckoutPolicy) -> str:
    """Applies a decided outcome the provider reported other than by an event (the shopper's
    return, reconciliation's list) exactly as the matching event would: ``settled-paid``,
    ``settled-declined``, ``already-settled`` or ``paid-after-decline``."""
    event = ProviderEvent(id="", type="", payment_reference=result.reference,
                          decline_code=result.decline_code)
    handler = _succeeded if result.status == "succeeded" else _failed
    return handler(session, clock=clock, provider_name=provider_name, event=event,
                   payment=payment, policy=policy)


def _payment(session: Session, reference: str) -> Payment | None:
    if not reference:
        return None
    return session.scalar(select(Payment).where(Payment.provider_ref == reference)
                          .order_by(Payment.id.desc()).limit(1))


def _apply(session: Session, *, clock: Clock, provider_name: str, event: ProviderEvent,
           policy: CheckoutPolicy) -> str:
    payment = _payment(session, event.payment_reference)
    if event.type not in HANDLED:
        return "ignored"
    if payment is None:
        # Not a payment of this shop's, or one whose request has not yet noted its reference;
        # kept, so the outcome is visible and a repeat is still recognised.
        return "unmatched"
    return HANDLED[event.type](session, clock=clock, provider_name=provider_name, event=event,
                               payment=payment, policy=policy)


def _succeeded(session: Session, *, clock: Clock, provider_name: str, event: ProviderEvent,
               payment: Payment, policy: CheckoutPolicy) -> str:
    if payment.status is PaymentStatus.declined:
        # Money taken for an order already given up: an admin must refund it.
        log.warning("payment %s succeeded at the provider after it was declined here",
                    payment.id)
        return "paid-after-decline"
    if payment.status is not PaymentStatus.pending:
        return "already-settled"
    settle_reported_payment(session, clock=clock, payment=payment, provider_name=provider_name,
                            result=ChargeResult("succeeded", event.payment_reference),
                            on_payment_failed=_release(clock, policy))
    return "settled-paid"


def _failed(session: Session, *, clock: Clock, provider_name: str, event: ProviderEvent,
            payment: Payment, policy: CheckoutPolicy) -> str:
    if payment.status is not PaymentStatus.pending:
        return "already-settled"
    settle_reported_payment(session, clock=clock, payment=payment, provider_name=provider_name,
                            result=ChargeResult("declined", event.payment_reference,
                                                event.decline_code or "card_declined"),
                            on_payment_failed=_release(clock, policy))
    return "settled-declined"


def _refunded(session: Session, *, clock: Clock, provider_name: str, event: ProviderEvent,
              payment: Payment, policy: CheckoutPolicy) -> str:
    """``event.amount`` is the charge's refunded total at the provider; what Dropline has not
    recorded of it (a dashboard refund) is recorded now, capped at the order's total."""
    known = session.scalar(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.payment_id == payment.id, Refund.status == RefundStatus.succeeded)) or 0
    missing = event.amount - known
    if missing <= 0:
        return "already-recorded"
    raised = session.execute(
        update(Order).where(Order.id == payment.order_id,
                            Order.status.in_((OrderStatus.paid, OrderStatus.partially_refunded)),
                            Order.refunded_amount + missing <= Order.total_amount)
        .values(refunded_amount=Order.refunded_amount + missing)).rowcount
    if raised != 1:
        return "refund-not-applicable"
    order = session.get(Order, payment.order_id)
    assert order is not None
    session.refresh(order)
    order.status = (OrderStatus.refunded if order.refunded_amount == order.total_amount
                    else OrderStatus.partially_refunded)
    refund = Refund(order_id=order.id, payment_id=payment.id, amount=missing,
                    currency=order.currency, reason="refunded at the payment provider",
                    status=RefundStatus.succeeded, idempotency_key=f"{provider_name}-{event.id}",
                    provider_ref=None, actor=f"provider:{provider_name}",
                    created_at=clock.now())
    session.add(refund)
    session.flush()
    record_event(session, clock=clock, type="order.refunded", subject_type="order",
                 subject_id=order.id, customer_id=order.customer_id,
                 payload={"order_id": order.id, "refund_id": refund.id, "refund_amount": missing,
                          "refunded_amount": order.refunded_amount,
                          "reason": refund.reason, "actor": refund.actor})
    return "refund-recorded"


def _disputed(session: Session, *, clock: Clock, provider_name: str, event: ProviderEvent,
              payment: Payment, policy: CheckoutPolicy) -> str:
    order = session.get(Order, payment.order_id)
    assert order is not None
    amount = min(max(event.amount, 1), order.total_amount)
    record_chargeback(session, clock=clock, order_id=order.id, amount=amount,
                      reason=(event.dispute_reason or "dispute")[:200],
                      actor=f"provider:{provider_name}")
    return "chargeback-recorded"


def _release(clock: Clock, policy: CheckoutPolicy) -> PaymentFailedHook:
    """Where a failed order's units go back: its cart's stock (and delivery window), a
    counter sale's pop-up stock, or its drop."""
    def release(session: Session, order: Order) -> None:
        if order.cart_id is not None:
            release_cart_order(session, order, clock=clock, policy=policy)
        elif order.fulfilment_path == "pop-up":
            return_cart_stock(session, order, clock=clock)
        else:
            return_units_of_order(session, clock=clock, order=order)
    return release


HANDLED = {
    "payment_intent.succeeded": _succeeded,
    "payment_intent.payment_failed": _failed,
    "charge.refunded": _refunded,
    "charge.dispute.created": _disputed,
}
