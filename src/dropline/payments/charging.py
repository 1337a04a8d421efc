"""Taking money, written once for every way the shop charges a card: a checkout, a drop order,
a counter sale (``orders.flows.pay_order``) and a membership charge (``memberships.flows``).

A card is never charged inside a database transaction. Each charge is

    1. claimed   a committed row says the charge is due, with its own idempotency key: an
                 order's pending ``Payment`` (written with the order), or a membership charge's
                 attempt (claimed with a lease by one conditional UPDATE)
    2. charged   outside any transaction, through the provider, with that key
                 (``charge_with_retries``): a transient failure is retried a few times with the
                 same key, and a crash before the settle is resumed with it, so the provider
                 answers from its memory and never charges twice
    3. settled   one conditional UPDATE moves the claim out of pending (``settle_payment``);
                 only the first settler's applies, a concurrent resumer's is a no-op

so whatever runs a charge, however often, it is paid at most once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropline.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from dropline.payments.provider import ChargeResult, ProviderUnavailable

__all__ = [
    "PROVIDER_ATTEMPTS",
    "charge_with_retries",
    "latest_payment",
    "note_awaiting_payment",
    "settle_payment",
    "settle_refund",
]

PROVIDER_ATTEMPTS = 3  # tries per request while the provider is unavailable


def charge_with_retries(charge: Callable[[], ChargeResult]) -> ChargeResult | None:
    """Calls ``charge`` (one provider request with a fixed idempotency key) up to
    ``PROVIDER_ATTEMPTS`` times while the provider is unavailable, backing off 50 ms, 100 ms;
    None if it never answered (nothing was decided: the same key may be retried later)."""
    for attempt in range(PROVIDER_ATTEMPTS):
        try:
            return charge()
        except ProviderUnavailable:
            if attempt + 1 < PROVIDER_ATTEMPTS:
                time.sleep(0.05 * 2**attempt)
    return None


def latest_payment(session: Session, order_id: int) -> Payment:
    """The order's newest payment (the one a resumed checkout charges)."""
    payment = session.scalar(select(Payment).where(Payment.order_id == order_id)
                             .order_by(Payment.id.desc()).limit(1))
    assert payment is not None
    return payment


def settle_payment(session: Session, *, at: datetime, payment_id: int, provider_name: str,
                   result: ChargeResult) -> PaymentStatus | None:
    """Records the provider's answer on a pending payment; returns the payment's new status,
    or None if another settler moved it out of pending first (then nothing is changed)."""
    status = PaymentStatus.succeeded if result.status == "succeeded" else PaymentStatus.declined
    moved = session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PaymentStatus.pending)
        .values(status=status, provider=provider_name, provider_ref=result.reference,
                decline_code=result.decline_code, updated_at=at)
    ).rowcount
    return status if moved == 1 else None


def note_awaiting_payment(session: Session, *, at: datetime, payment_id: int,
                          provider_name: str, reference: str) -> None:
    """The provider has not decided yet (the shopper must authenticate, or the bank is still
    at work): the payment stays pending, with the provider's reference, so the provider's
    later report (a webhook) finds it and settles it."""
    session.execute(update(Payment).where(Payment.id == payment_id,
                                          Payment.status == PaymentStatus.pending)
                    .values(provider=provider_name, provider_ref=reference, updated_at=at))


def settle_refund(session: Session, *, refund_id: int, reference: str) -> bool:
    """Marks a pending refund paid with the provider's reference; False if another caller
    settled it first."""
    moved = session.execute(
        update(Refund).where(Refund.id == refund_id, Refund.status == RefundStatus.pending)
        .values(status=RefundStatus.succeeded, provider_ref=reference)
    ).rowcount
    return moved == 1
