"""Events and their webhook deliveries written in bulk (PostgreSQL): what ``record_event``
and the webhooks' subscription do for one event, for many in a few statements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dropline import bulk
from dropline.events.bulk import insert_events
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from dropline.webhooks.service import subscribes_to


def record_events(session: Session, *, now: datetime,
                  events: Sequence[dict[str, Any]]) -> None:
    """The events in one INSERT (``events.bulk.insert_events``), then the webhook deliveries
    of the active endpoints that subscribe to them (one read, one INSERT). With no
    subscriber, the events take their ids from the table's default."""
    if not events:
        return
    endpoints = session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.active.is_(True))).all()
    wanted = [endpoint for endpoint in endpoints
              if any(subscribes_to(endpoint, kind) for kind in {e["type"] for e in events})]
    if not wanted:
        insert_events(session, now=now, events=events)
        return
    ids = [row[0] for row in bulk.next_ids(session, ["domain_events"], len(events))]
    insert_events(session, now=now, events=events, ids=ids)
    deliveries = [{"endpoint_id": endpoint.id, "event_id": event_id,
                   "status": DeliveryStatus.pending, "next_attempt_at": now, "attempts": 0}
                  for event_id, e in zip(ids, events, strict=True) for endpoint in wanted
                  if subscribes_to(endpoint, e["type"])]
    if deliveries:
        session.execute(insert(WebhookDelivery), deliveries)
