"""Recovery of charges whose settlement never ran.

A checkout, a drop order or a counter sale is written (commit 1), charged outside any
transaction, then settled (commit 2; ``orders.flows``, ``drops.crowd.writer``). A worker that
dies between the charge and the settle leaves a pending order whose card was charged (or
declined) at the provider. The shopper's retry with the same Idempotency-Key resumes it, but a
shopper who never retries would keep a charge without a paid order; this job settles such
orders by itself.

For each pending payment older than ``grace_seconds`` it asks the provider what happened under
the payment's idempotency key (``PaymentProvider.find_charge``, which never charges) and, if a
charge was made, settles it as the crashed worker would have: paid, or payment-failed with the
units given back by ``on_payment_failed``. A payment the provider never saw is left as it is
(nothing was charged; the shopper's retry still resumes it). Idempotent: the settle is one
guarded UPDATE (``payments.charging.settle_payment``), so a second pass, or a worker that
settles at the same moment, changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from dropline.clock import Clock
from dropline.db import Database
from dropline.failpoints import AFTER_LOOKUP, stop_at
from dropline.orders.flows import PaymentFailedHook, settle_order
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import Payment, PaymentStatus
from dropline.payments.provider import PaymentProvider

__all__ = ["RECOVERY_GRACE_SECONDS", "Recovered", "settle_stranded_payments"]

# A live worker settles within a second of its charge; older pending payments are looked up.
# (Looking one up early is harmless: a charge not made yet is left alone.)
RECOVERY_GRACE_SECONDS = 10
BATCH = 500


@dataclass
class Recovered:
    """What one pass found: payments looked up, orders settled paid or failed here, payments
    the provider never charged (left pending), and the orders settled failed."""

    looked_up: int = 0
    paid: int = 0
    failed: int = 0
    not_charged: int = 0
    failed_orders: list[int] = field(default_factory=list)


def stranded_payments(db: Database, *, clock: Clock, grace_seconds: int,
                      order_ids: Collection[int] | None = None) -> list[tuple[int, int, str]]:
    """(payment id, order id, idempotency key) of pending payments of pending orders written
    more than ``grace_seconds`` ago (of ``order_ids`` only, if given), oldest first."""
    cutoff = clock.now() - timedelta(seconds=grace_seconds)
    query = (select(Payment.id, Payment.order_id, Payment.idempotency_key)
             .join(Order, Order.id == Payment.order_id)
             .where(Payment.status == PaymentStatus.pending,
                    Order.status == OrderStatus.pending_payment, Payment.created_at <= cutoff)
             .order_by(Payment.id).limit(BATCH))
    if order_ids is not None:
        query = query.where(Payment.order_id.in_(list(order_ids)))
    with db.transaction() as session:
        return [(p, o, k) for p, o, k in session.execute(query)]


def settle_stranded_payments(
    db: Database, *, clock: Clock, provider: PaymentProvider,
    on_payment_failed: PaymentFailedHook, grace_seconds: int = RECOVERY_GRACE_SECONDS,
    order_ids: Collection[int] | None = None,
    progress: Callable[[int, int], None] | None = None, failpoint: str | None = None,
) -> Recovered:
    """One pass (see the module docstring): each payment looked up outside any transaction,
    then settled in a transaction of its own. ``progress(done, total)`` after each;
    ``failpoint``: the crash tests' setting (``dropline.failpoints``)."""
    found = stranded_payments(db, clock=clock, grace_seconds=grace_seconds,
                              order_ids=order_ids)
    recovered = Recovered()
    for done, (payment_id, order_id, key) in enumerate(found, start=1):
        recovered.looked_up += 1
        result = provider.find_charge(idempotency_key=key)
        if result is None:
            recovered.not_charged += 1
        else:
            stop_at(AFTER_LOOKUP, failpoint)
            with db.transaction() as session:
                order, moved = settle_order(
                    session, clock=clock, order_id=order_id, payment_id=payment_id,
                    provider_name=provider.name, result=result,
                    on_payment_failed=on_payment_failed)
                if moved and order.status is OrderStatus.paid:
                    recovered.paid += 1
                elif moved:
                    recovered.failed += 1
                    recovered.failed_orders.append(order_id)
        if progress is not None:
            progress(done, len(found))
    return recovered
