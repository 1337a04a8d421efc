from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class CartStatus(enum.StrEnum):
    open = "open"
    checked_out = "checked-out"


class Cart(Base):
    """Addressed by an unguessable UUID so a guest can build a cart before signing in."""

    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[CartStatus] = mapped_column(
        Enum(CartStatus, native_enum=False, length=16), default=CartStatus.open
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CartLine(Base):
    __tablename__ = "cart_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    cart_id: Mapped[str] = mapped_column(String(36), ForeignKey("carts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("variants.id"))
    quantity: Mapped[int]

    __table_args__ = (
        UniqueConstraint("cart_id", "variant_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )
