"""Write domain events. Each event also queues one webhook delivery per subscribed endpoint,
in the same transaction, so a committed change always has its notifications queued and a
rolled-back one never does."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.events.models import DomainEvent


def record_event(
    session: Session,
    *,
    clock: Clock,
    type: str,
    subject_type: str,
    subject_id: str | int,
    payload: dict[str, Any] | None = None,
    customer_id: int | None = None,
) -> DomainEvent:
    from dropline.webhooks.service import enqueue_deliveries

    event = DomainEvent(
        event_id=str(uuid.uuid4()),
        type=type,
        subject_type=subject_type,
        subject_id=str(subject_id),
        customer_id=customer_id,
        occurred_at=clock.now(),
        payload=payload or {},
    )
    session.add(event)
    session.flush()
    enqueue_deliveries(session, event=event, clock=clock)
    return event


def list_events(
    session: Session,
    *,
    type: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[DomainEvent]:
    query = select(DomainEvent).where(DomainEvent.id > after_id).order_by(DomainEvent.id)
    if type:
        query = query.where(DomainEvent.type == type)
    if subject_type:
        query = query.where(DomainEvent.subject_type == subject_type)
    if subject_id:
        query = query.where(DomainEvent.subject_id == subject_id)
    return list(session.scalars(query.limit(limit)))
