from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class KeyState(enum.StrEnum):
    in_flight = "in-flight"
    completed = "completed"


class IdempotencyRecord(Base):
    """One per (principal, Idempotency-Key): the first request's fingerprint and, once done,
    its response, which every later request with the same key and body gets back."""

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    principal: Mapped[str] = mapped_column(String(64))  # "customer:12", "token:3"
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256(method, path, canonical body)
    state: Mapped[KeyState] = mapped_column(Enum(KeyState, native_enum=False, length=16))
    locked_at: Mapped[datetime]
    response_status: Mapped[int | None]
    response_body: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("principal", "key"),
        Index("ix_idempotency_records_created_at", "created_at"),
    )
