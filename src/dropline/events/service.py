"""Write domain events, and publish each to the subscribers the composition root registered.

A subscriber runs inside ``record_event``, in the same session and transaction as the event, so
what it writes commits with the change or not at all: webhooks (``webhooks.service.
enqueue_deliveries``) queue one delivery per subscribed endpoint this way, so a committed change
always has its notifications queued and a rolled-back one never does. The core knows no
subscriber: ``dropline.bootstrap.install_listeners`` registers them when the process starts
(the app, the worker, the CLI and the test set-up all call it)."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.events.models import DomainEvent

__all__ = ["EventSubscriber", "list_events", "record_event", "subscribe"]


class EventSubscriber(Protocol):
    """Called with each event once it is flushed (it has its id), in the event's transaction."""

    def __call__(self, session: Session, *, event: DomainEvent, clock: Clock) -> Any: ...


_subscribers: list[EventSubscriber] = []


def subscribe(subscriber: EventSubscriber) -> None:
    """Registers ``subscriber`` for every event recorded from now on; registering it again
    changes nothing. Called by the composition root, never at import time."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


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
    for subscriber in _subscribers:
        subscriber(session, event=event, clock=clock)
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
