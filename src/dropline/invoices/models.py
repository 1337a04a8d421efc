"""Invoices and credit notes: numbered documents that never change once issued.

Numbers are gapless per series and never reused or renumbered: a document takes the next
number from its series' counter row (``document_counters``) by one UPDATE in the transaction
that writes it, so a rolled-back issue gives its number back and two concurrent issues queue
on the counter's row lock. Each document keeps a snapshot of what it says (lines, VAT by
rate, the buyer), so a later change to the order never changes an issued document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class DocumentCounter(Base):
    __tablename__ = "document_counters"

    series: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    number: Mapped[int]
    reference: Mapped[str] = mapped_column(String(24), unique=True)  # INV-000042
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    net_amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger)
    gross_amount: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # lines, VAT by rate, parties
    issued_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("number"),)


class CreditNote(Base):
    __tablename__ = "credit_notes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    number: Mapped[int]
    reference: Mapped[str] = mapped_column(String(24), unique=True)  # CN-000007
    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id"), index=True)
    refund_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("refunds.id"), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    net_amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger)
    gross_amount: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("number"),)
