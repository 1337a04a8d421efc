"""The audit log's table: one row per audited change, written in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK

__all__ = ["AuditLog"]


class AuditLog(Base):
    """Append-only: who changed what, old -> new, on audited tables (``audit.AUDITED``).
    Written by the audit trail (its session listeners and ``record_bulk``), never by hand; no
    API updates or deletes it, and a database trigger (migration 0007) refuses UPDATE (and
    DELETE on PostgreSQL)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column(String(16))  # create | update | delete
    entity: Mapped[str] = mapped_column(String(40))  # the table name
    entity_id: Mapped[str] = mapped_column(String(64))
    # {"column": [old, new]}, JSON-safe values (enums as their value, times as ISO 8601).
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)
