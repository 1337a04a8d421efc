"""A shop's own VAT rates (added to or overriding the shipped ``data/vat_rates.csv``) and the
tax class of each product (standard unless set)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK
from dropline.tax.rules import TaxClass


class TaxRate(Base):
    __tablename__ = "tax_rates"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    tax_class: Mapped[TaxClass] = mapped_column(Enum(TaxClass, native_enum=False, length=16))
    rate_bp: Mapped[int]  # basis points: 2000 = 20 %
    valid_from: Mapped[date]
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("country", "tax_class", "valid_from"),)


class ProductTaxClass(Base):
    __tablename__ = "product_tax_classes"

    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    tax_class: Mapped[TaxClass] = mapped_column(Enum(TaxClass, native_enum=False, length=16))
