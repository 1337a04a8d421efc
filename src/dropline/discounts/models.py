"""Discount codes and their redemptions.

``uses`` is the cap's counter: a checkout takes a use with one conditional UPDATE
(``uses < max_uses``) whose row count decides, in the checkout's own transaction, so the cap
holds on SQLite and PostgreSQL alike under any number of concurrent checkouts. The row lock
that UPDATE takes (held to commit) also orders the per-customer count that follows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK
from dropline.discounts.rules import DiscountKind, Stacking


class DiscountCode(Base):
    __tablename__ = "discount_codes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # upper case
    description: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[DiscountKind] = mapped_column(Enum(DiscountKind, native_enum=False, length=16))
    percent: Mapped[int] = mapped_column(default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units of ``currency``
    currency: Mapped[str] = mapped_column(String(3))
    # Scope: ids / slugs; an empty list matches everything (``discounts.rules``).
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stacking: Mapped[Stacking] = mapped_column(Enum(Stacking, native_enum=False, length=24))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    max_uses: Mapped[int | None]
    max_uses_per_customer: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)",
                        name="uses_within_cap"),
        CheckConstraint("percent >= 0 AND percent <= 100 AND amount >= 0",
                        name="value_in_range"),
    )


class DiscountRedemption(Base):
    """One order's use of a code, and what it took off (goods and delivery)."""

    __tablename__ = "discount_redemptions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    discount_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("discount_codes.id"), index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    delivery_discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
