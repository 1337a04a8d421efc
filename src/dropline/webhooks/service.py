"""Webhook endpoints and the outbox of deliveries."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import InvalidInput, NotFound
from dropline.events.models import DomainEvent
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from dropline.webhooks.signing import new_secret
from dropline.webhooks.targets import STRICT, TargetPolicy, check_new_target


def create_endpoint(
    session: Session, *, clock: Clock, url: str, event_types: list[str], description: str = "",
    targets: TargetPolicy = STRICT,
) -> WebhookEndpoint:
    check_new_target(url, targets)  # no SSRF: internal hosts are refused (webhooks.targets)
    if not event_types:
        raise InvalidInput('give at least one event type, or "*" for all', field="event_types")
    endpoint = WebhookEndpoint(
        url=url,
        description=description,
        secret=new_secret(),
        event_types=sorted(set(event_types)),
        active=True,
        created_at=clock.now(),
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def deactivate_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.active = False
    session.flush()
    return endpoint


def subscribes_to(endpoint: WebhookEndpoint, event_type: str) -> bool:
    prefix = event_type.split(".", 1)[0] + ".*"
    return any(t in ("*", event_type, prefix) for t in endpoint.event_types)


def enqueue_deliveries(session: Session, *, event: DomainEvent, clock: Clock) -> int:
    endpoints = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))
    count = 0
    for endpoint in endpoints:
        if subscribes_to(endpoint, event.type):
            session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    status=DeliveryStatus.pending,
                    next_attempt_at=clock.now(),
                )
            )
            count += 1
    if count:
        session.flush()
    return count


def backoff(attempts: int) -> timedelta:
    """Exponential: 10 s, 20 s, 40 s ... capped at 6 hours."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 6 * 3600))


def list_deliveries(
    session: Session, *, endpoint_id: int | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(session.scalars(query))
