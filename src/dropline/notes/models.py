from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class StaffNote(Base):
    """A note a staff member left on an order or a customer. Notes are free text and may name
    a person, so erasing a customer deletes the notes on them (``customers.erasure``)."""

    __tablename__ = "staff_notes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # order | customer
    subject_id: Mapped[int] = mapped_column(BigInteger)
    author: Mapped[str] = mapped_column(String(120))  # the audit trail's actor, "admin:3"
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_staff_notes_subject", "subject_type", "subject_id"),)
