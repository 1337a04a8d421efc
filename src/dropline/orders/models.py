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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropline.catalog.models import ConditionGrade
from dropline.db import Base, BigIntPK
from dropline.orders.rules import OrderStage


class OrderStatus(enum.StrEnum):
    pending_payment = "pending-payment"
    paid = "paid"
    payment_failed = "payment-failed"
    partially_refunded = "partially-refunded"
    refunded = "refunded"


class Order(Base):
    """Totals are stored and also constrained by the database to reconcile with each other;
    ``orders.rules.order_totals`` reconciles them with the lines."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[OrderStatus] = mapped_column(Enum(OrderStatus, native_enum=False, length=24))
    # Where the goods are (``orders.rules``: the lifecycle); ``status`` is where the money is.
    # Every writer of orders gets "paid" without naming it (the drop engine's bulk writer too);
    # an order whose payment is not captured cannot leave it.
    stage: Mapped[OrderStage] = mapped_column(
        Enum(OrderStage, native_enum=False, length=24), default=OrderStage.paid,
        server_default=OrderStage.paid.name)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount: Mapped[int] = mapped_column(BigInteger)
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    total_amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # The discount code used (as typed then, upper case); its redemption row has the details.
    discount_code: Mapped[str | None] = mapped_column(String(32))
    # VAT (``tax.rules``): the tax in the order, and what of it was added on top of the prices
    # (0 when prices include tax); the destination whose rates applied; reverse charge.
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax_added_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    shipping_tax_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    shipping_tax_rate_bp: Mapped[int] = mapped_column(default=0, server_default="0")
    tax_country: Mapped[str] = mapped_column(String(2), default="", server_default="")
    reverse_charge: Mapped[bool] = mapped_column(default=False, server_default="0")
    vat_number: Mapped[str] = mapped_column(String(20), default="", server_default="")
    # One order per checkout attempt: the idempotency record it came from (unique).
    checkout_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    cart_id: Mapped[str | None] = mapped_column(String(36))
    location_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("locations.id"))
    fulfilment_path: Mapped[str] = mapped_column(String(24), default="central")
    acquisition_source: Mapped[str] = mapped_column(String(64), default="direct")
    acquisition_campaign: Mapped[str] = mapped_column(String(120), default="")
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)
    paid_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            "total_amount = subtotal_amount - discount_amount + shipping_amount"
            " + tax_added_amount",
            name="total_reconciles",
        ),
        CheckConstraint("subtotal_amount >= 0 AND discount_amount >= 0 AND shipping_amount >= 0",
                        name="amounts_non_negative"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= total_amount",
                        name="refund_within_total"),
    )


class OrderLine(Base):
    """A snapshot of what was sold, including the condition disclosure the buyer saw."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("variants.id"))
    sku: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(200))
    variant_name: Mapped[str] = mapped_column(String(120))
    product_family: Mapped[str] = mapped_column(String(64))
    condition_grade: Mapped[ConditionGrade] = mapped_column(
        Enum(ConditionGrade, native_enum=False, length=16)
    )
    condition_disclosure: Mapped[str] = mapped_column(Text, default="")
    unit_price_amount: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int]
    line_total_amount: Mapped[int] = mapped_column(BigInteger)
    # A discount code's part of this line (whole line); refunds give it back in proportion.
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax_class: Mapped[str] = mapped_column(String(16), default="standard",
                                           server_default="standard")
    tax_rate_bp: Mapped[int] = mapped_column(default=0, server_default="0")  # 2000 = 20 %
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Units cancelled before packing (refunded, back in stock); raised by a conditional UPDATE.
    cancelled_quantity: Mapped[int] = mapped_column(default=0, server_default="0")

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("cancelled_quantity >= 0 AND cancelled_quantity <= quantity",
                        name="cancelled_within_quantity"),
        CheckConstraint("line_total_amount = unit_price_amount * quantity", name="line_reconciles"),
        CheckConstraint("discount_amount >= 0 AND discount_amount <= line_total_amount",
                        name="discount_within_line"),
    )


class ShipmentStatus(enum.StrEnum):
    pending = "pending"  # allocated: to be picked and packed at its location
    shipped = "shipped"
    delivered = "delivered"
    failed = "failed"  # a delivery attempt failed; it may be shipped again
    returned = "returned"


class Shipment(Base):
    """One parcel of an order, from one location: an order's lines are split by the location
    their units are taken from (``orders.shipments.allocate``)."""

    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("locations.id"))
    status: Mapped[ShipmentStatus] = mapped_column(
        Enum(ShipmentStatus, native_enum=False, length=16))
    carrier: Mapped[str] = mapped_column(String(32), default="")
    service: Mapped[str] = mapped_column(String(64), default="")
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    tracking_url: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(index=True)
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    # A tracking number names one parcel of a carrier.
    __table_args__ = (UniqueConstraint("carrier", "tracking_number"),)


class ShipmentLine(Base):
    """An order line in a shipment; a line travels whole in one shipment. Units cancelled
    later are the line's ``cancelled_quantity``."""

    __tablename__ = "shipment_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("order_lines.id", ondelete="CASCADE"), unique=True)
