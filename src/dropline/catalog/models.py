from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class ConditionGrade(enum.StrEnum):
    new = "new"
    refurbished_a = "refurbished-a"
    refurbished_b = "refurbished-b"
    refurbished_c = "refurbished-c"
    used = "used"


class ProductStatus(enum.StrEnum):
    draft = "draft"
    active = "active"
    archived = "archived"


class ProductFamily(Base):
    """A line of products analysed together (e.g. "eau de parfum", "candles"): LTV is cut by it."""

    __tablename__ = "product_families"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    family_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("product_families.id"), index=True)
    status: Mapped[ProductStatus] = mapped_column(
        Enum(ProductStatus, native_enum=False, length=16), default=ProductStatus.active
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Variant(Base):
    """A sellable SKU. Price is integer minor units in ``currency``; a grade other than new
    must carry a disclosure text, shown wherever the item is sold."""

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))  # e.g. "50 ml"
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    condition_grade: Mapped[ConditionGrade] = mapped_column(
        Enum(ConditionGrade, native_enum=False, length=16), default=ConditionGrade.new
    )
    condition_disclosure: Mapped[str] = mapped_column(Text, default="")
    weight_grams: Mapped[int] = mapped_column(default=0)
    final_sale: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        CheckConstraint("price_amount >= 0", name="price_non_negative"),
        CheckConstraint("weight_grams >= 0", name="weight_non_negative"),
    )


class StockAdjustment(Base):
    """One change to a variant's stock at a location made by a person (a count, damage, a
    found box), with its reason: the stock ledger the console shows beside each level. Rows
    are only ever added; sales and returns change stock by arithmetic and are not listed."""

    __tablename__ = "stock_adjustments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("locations.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("variants.id", ondelete="CASCADE"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))  # one of catalog.rules.STOCK_REASONS
    note: Mapped[str] = mapped_column(String(300), default="")
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
