from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class PaymentStatus(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    declined = "declined"


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    # Sent to the provider with the charge: a retried charge can never be taken twice.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[PaymentStatus] = mapped_column(Enum(PaymentStatus, native_enum=False, length=16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    card_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    decline_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)


class RefundStatus(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    payment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("payments.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[RefundStatus] = mapped_column(Enum(RefundStatus, native_enum=False, length=16))
    # Sent to the provider: a retried refund is never paid out twice.
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(120))  # "admin:3", "token:7", "system"
    created_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)


class LocalProviderCharge(Base):
    """The local payment provider's own ledger (what a card network would remember). It is kept
    in its own transaction, apart from the shop's, as a real provider would be."""

    __tablename__ = "local_provider_charges"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "charge" | "refund" | "card" (a token)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    charge_reference: Mapped[str | None] = mapped_column(String(64))  # for refunds
    outcome: Mapped[str] = mapped_column(String(32))  # succeeded | declined:<code>
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # A "card" row is a payment method token: what the card does when charged (``outcome``),
    # its last four digits and fingerprint; never its number.
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class ProviderEventRecord(Base):
    """Each event a provider reported (a Stripe webhook), stored once by its id: a repeated
    delivery finds its row and changes nothing. ``outcome`` says what it did."""

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(64))
    payment_reference: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("provider", "event_id"),)


class PaymentDiscrepancy(Base):
    """What reconciliation (``dropline.reconciliation``) found and could not repair by itself:
    a charge at the provider without a paid order of this shop's (``charge_without_order``), or
    a paid order without a succeeded charge at the provider (``paid_without_charge``). Kept
    once per (kind, reference) until an admin resolves it; the admin overview lists the open
    ones."""

    __tablename__ = "payment_discrepancies"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(100))  # the charge's, or the payment's key
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    detail: Mapped[str] = mapped_column(String(200))
    found_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("kind", "reference"),)
