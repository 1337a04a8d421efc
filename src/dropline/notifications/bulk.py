"""Order mails queued in bulk (PostgreSQL), for the drop engine's batch writer
(``drops.crowd.writer``): its orders are written many per statement and their events recorded
by ``webhooks.bulk.record_events``, bypassing the event subscribers, so this is what
``service.queue_mail`` does for one event, for a batch, in the batch's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dropline import bulk
from dropline.notifications.models import MailStatus
from dropline.notifications.rules import EVENT_TEMPLATES

__all__ = ["queue_event_mails"]


def queue_event_mails(session: Session, *, now: datetime,
                      events: Sequence[dict[str, Any]]) -> int:
    """One INSERT of the mails of ``events`` (the dicts ``events.bulk.insert_events`` writes)
    that have a template. Gives each such event its ``event_id`` first, so the mail row and
    the event row share it as ``record_event`` would; a row already there is left as is.
    Call it before the events are recorded, in the same transaction. Returns mails queued."""
    rows = []
    for event in events:
        template = EVENT_TEMPLATES.get(event["type"])
        if template is None or event["subject_type"] != "order":
            continue
        event.setdefault("event_id", str(uuid.uuid4()))
        rows.append((event["event_id"], template, event["customer_id"],
                     int(event["subject_id"]), event["payload"], MailStatus.pending.name, 0,
                     now, "", now))
    written = bulk.insert_unnest(session, "mail_outbox", [
        ("event_id", "text"), ("template", "text"), ("customer_id", "bigint"),
        ("order_id", "bigint"), ("payload", "json"), ("status", "text"),
        ("attempts", "integer"), ("next_attempt_at", "timestamptz"), ("last_error", "text"),
        ("created_at", "timestamptz")], rows,
        suffix="ON CONFLICT (event_id, template) DO NOTHING RETURNING id")
    return len(written)
