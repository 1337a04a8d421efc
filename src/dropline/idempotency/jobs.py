"""Forget completed idempotency records after the retention window (24 h by default)."""

from __future__ import annotations

from dropline.clock import Clock
from dropline.db import Database
from dropline.idempotency.service import purge_expired


def purge_idempotency_records(db: Database, *, clock: Clock, retention_hours: int) -> int:
    with db.transaction() as session:
        return purge_expired(session, clock=clock, retention_hours=retention_hours)
