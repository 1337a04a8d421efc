from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class DomainEvent(Base):
    """An append-only record of a state change, written in the same transaction as the change.

    Telemetry reads these; webhook deliveries are queued from them (the outbox).
    ``payload`` carries what analysis needs to cut by: acquisition source and campaign, product
    families, fulfilment path.
    """

    __tablename__ = "domain_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # public, stable (UUID)
    type: Mapped[str] = mapped_column(String(64), index=True)  # e.g. "order.paid"
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_domain_events_subject", "subject_type", "subject_id"),)
