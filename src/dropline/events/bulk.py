"""Domain events written in bulk (PostgreSQL): ``events.record_event`` for many events in one
statement, for the paths that write in batches (the drop engine's orders)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dropline import bulk

COLUMNS = [("event_id", "text"), ("type", "text"), ("subject_type", "text"),
           ("subject_id", "text"), ("customer_id", "bigint"), ("occurred_at", "timestamptz"),
           ("payload", "json")]


def insert_events(session: Session, *, now: datetime, events: Sequence[dict[str, Any]],
                  ids: Sequence[int] | None = None) -> None:
    """One INSERT for ``events`` (dicts of type, subject_type, subject_id, customer_id,
    payload), each with its ``event_id`` if it has one (a mail queued for it refers to it,
    ``notifications.bulk``) or a fresh one, occurring ``now``. ``ids``: the rows' primary keys,
    taken beforehand (``bulk.next_ids``) when other rows must refer to them; without them the
    table's default gives them (one round trip fewer)."""
    rows = [(e.get("event_id") or str(uuid.uuid4()), e["type"], e["subject_type"],
             e["subject_id"], e["customer_id"], now, e["payload"]) for e in events]
    if ids is None:
        bulk.insert_unnest(session, "domain_events", COLUMNS, rows)
        return
    bulk.insert_unnest(session, "domain_events", [("id", "bigint"), *COLUMNS],
                       [(event_id, *row) for event_id, row in zip(ids, rows, strict=True)])
