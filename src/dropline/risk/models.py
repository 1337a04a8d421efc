"""Tables of the risk domain: returns (RMA), per-product return policies, serial units,
chargebacks, risk cases and their decisions, risk settings. The shop-wide audit log's table is
``audit.models.AuditLog`` (below the domains), which the risk console reads.

No catalog or order table is altered: what returns need to know about a product (its window,
final sale) lives in ``return_policies``; serials live in ``serial_units``."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropline.audit.models import AuditLog  # noqa: F401 - the risk console reads the log
from dropline.db import Base, BigIntPK


def _enum(kind: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(kind, native_enum=False, length=length)


class RiskSetting(Base):
    """One tunable (return window, fee, signal thresholds and weights) as JSON; defaults live
    in ``risk.config.DEFAULTS`` and a row here overrides one of them."""

    __tablename__ = "risk_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class ReturnPolicy(Base):
    """A product's (or one variant's) own return rules; a variant row beats a product row,
    which beats the shop default."""

    __tablename__ = "return_policies"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("variants.id", ondelete="CASCADE"))
    window_days: Mapped[int | None] = mapped_column(Integer)
    final_sale: Mapped[bool] = mapped_column(default=False)
    restocking_fee_bps: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("product_id", "variant_id"),
        CheckConstraint("window_days IS NULL OR window_days >= 0", name="window_non_negative"),
        CheckConstraint("restocking_fee_bps IS NULL OR "
                        "(restocking_fee_bps >= 0 AND restocking_fee_bps <= 10000)",
                        name="fee_in_range"),
    )


class ReturnStatus(enum.StrEnum):
    requested = "requested"  # the customer asked; nothing received yet
    received = "received"  # the brand has the goods and their grade
    in_review = "in-review"  # scored above the threshold: a person decides
    approved = "approved"  # refund (or exchange) decided, not yet paid
    refunding = "refunding"  # the refund is being paid (resumable)
    refunded = "refunded"
    exchanged = "exchanged"
    denied = "denied"


class ReturnOutcome(enum.StrEnum):
    refund = "refund"
    exchange = "exchange"


class ReturnRequest(Base):
    """One return of some units of one order line, from request to refund or exchange."""

    __tablename__ = "return_requests"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("order_lines.id"),
                                               index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(500), default="")
    preferred_outcome: Mapped[ReturnOutcome] = mapped_column(_enum(ReturnOutcome))
    exchange_variant_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("variants.id"))
    device_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    status: Mapped[ReturnStatus] = mapped_column(_enum(ReturnStatus), index=True)
    requested_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime | None]
    received_grade: Mapped[str | None] = mapped_column(String(16))
    serial_received: Mapped[str | None] = mapped_column(String(64))
    location_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("locations.id"))
    # The variant the units went back into stock as (same product, received grade); NULL if
    # the product has no variant of that grade: the units are then recorded, not sellable.
    restock_variant_id: Mapped[int | None] = mapped_column(BigInteger,
                                                           ForeignKey("variants.id"))
    outcome: Mapped[ReturnOutcome | None] = mapped_column(_enum(ReturnOutcome))
    gross_amount: Mapped[int | None] = mapped_column(BigInteger)
    fee_amount: Mapped[int | None] = mapped_column(BigInteger)
    refund_amount: Mapped[int | None] = mapped_column(BigInteger)
    refund_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("refunds.id"))
    decided_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("refund_amount IS NULL OR refund_amount >= 0", name="refund_non_negative"),
    )


class SerialStatus(enum.StrEnum):
    in_stock = "in-stock"
    sold = "sold"
    returned = "returned"


class SerialUnit(Base):
    """One serialised unit (refurbished goods): in stock, sold on an order line, returned."""

    __tablename__ = "serial_units"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    variant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("variants.id"), index=True)
    status: Mapped[SerialStatus] = mapped_column(_enum(SerialStatus))
    location_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("locations.id"))
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("order_lines.id"))
    grade: Mapped[str] = mapped_column(String(16))
    sold_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]


class Chargeback(Base):
    """A dispute the card network reported against an order (entered by an admin)."""

    __tablename__ = "chargebacks"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(120), default="")
    reported_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120))

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)


class CaseStatus(enum.StrEnum):
    open = "open"  # in the review queue
    approved = "approved"
    denied = "denied"
    auto_approved = "auto-approved"


class RiskCase(Base):
    """The score of one return, with every signal and its reason, as computed on receipt."""

    __tablename__ = "risk_cases"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    return_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("return_requests.id"),
                                           unique=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    # [{"name": ..., "points": ..., "reason": ...}] for the signals that fired.
    signals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus), index=True)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class RiskDecision(Base):
    """Every decision on a case, automatic or human, with its actor and reasons."""

    __tablename__ = "risk_decisions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("risk_cases.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # approve | deny | review
    actor: Mapped[str] = mapped_column(String(120))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500), default="")
    decided_at: Mapped[datetime]


class DeclineAlertKind(enum.StrEnum):
    customer = "customer"  # one account's checkouts
    ip = "ip"  # one client address, whichever accounts
    card = "card"  # one card (the provider's fingerprint), whichever accounts use it


class DeclineAlert(Base):
    """A card-testing signal for a person to review: one customer, client IP or card reached
    the decline limit (``settings.throttle``) and checkout cooled down for it. One open alert
    per subject: later bursts add to ``bursts`` until an operator marks it reviewed."""

    __tablename__ = "risk_decline_alerts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[DeclineAlertKind] = mapped_column(_enum(DeclineAlertKind))
    # The customer id, the IP, or the card fingerprint (never the card number).
    subject: Mapped[str] = mapped_column(String(128), index=True)
    # The customer whose decline reached the limit last.
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    declines: Mapped[int] = mapped_column(Integer)  # the limit reached, per burst
    window_seconds: Mapped[int] = mapped_column(Integer)
    bursts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
