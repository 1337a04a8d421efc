"""Deliver queued webhooks. Safe to run on several workers at once: a delivery is claimed with a
conditional UPDATE (and ``SKIP LOCKED`` on PostgreSQL) before it is sent, so no two senders post
the same row. A sender that dies mid-flight loses its lease and the row is retried later, so the
guarantee is at-least-once per (event, endpoint); receivers de-duplicate on ``webhook-id``, which
a resent delivery keeps (with the same body). ``tests/e2e/test_jobs_once.py`` kills a worker
between the receiver's answer and the mark."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import or_, select, update

from dropline.clock import Clock
from dropline.db import Database
from dropline.events.models import DomainEvent
from dropline.failpoints import AFTER_SEND, stop_at
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from dropline.webhooks.service import backoff
from dropline.webhooks.signing import sign
from dropline.webhooks.targets import (
    STRICT,
    TargetPolicy,
    UnresolvedTarget,
    UnsafeTarget,
    check_delivery_target,
)

LEASE_SECONDS = 60


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed


def event_body(event: DomainEvent) -> bytes:
    document = {
        "id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "data": {"subject_type": event.subject_type, "subject_id": event.subject_id, **event.payload},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _claim_due(db: Database, *, clock: Clock, limit: int,
               lease_seconds: int = LEASE_SECONDS) -> list[int]:
    now = clock.now()
    claimable = or_(
        WebhookDelivery.status == DeliveryStatus.pending,
        (WebhookDelivery.status == DeliveryStatus.sending) & (WebhookDelivery.lease_until < now),
    )
    with db.transaction() as session:
        query = (
            select(WebhookDelivery.id)
            .where(claimable, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        candidates = list(session.scalars(query))
        claimed = []
        for delivery_id in candidates:
            result = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, claimable)
                .values(
                    status=DeliveryStatus.sending,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=WebhookDelivery.attempts + 1,
                )
            )
            if result.rowcount == 1:
                claimed.append(delivery_id)
        return claimed


def deliver_due(
    db: Database, *, clock: Clock, client: httpx.Client, max_attempts: int = 8, limit: int = 100,
    targets: TargetPolicy = STRICT, lease_seconds: int = LEASE_SECONDS,
    failpoint: str | None = None,
) -> DeliveryReport:
    """Sends each due delivery to the address its host resolves to now, checked again here
    (``webhooks.targets``): a target that has become internal is refused without connecting,
    and the delivery fails with that reason rather than with what the internal port said."""
    report = DeliveryReport()
    for delivery_id in _claim_due(db, clock=clock, limit=limit,
                                  lease_seconds=lease_seconds):
        with db.transaction() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            assert delivery is not None
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
            event = session.get(DomainEvent, delivery.event_id)
            assert endpoint is not None and event is not None
            url, secret, event_id = endpoint.url, endpoint.secret, event.event_id
            body = event_body(event)
            attempts = delivery.attempts
        timestamp = int(clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id=event_id, timestamp=timestamp, body=body),
            "user-agent": "Dropline-Webhooks/1",
        }
        status_code: int | None = None
        error: str | None = None
        refused = False
        try:
            pinned_url, host_header, extensions = check_delivery_target(url, targets).pinned()
            response = client.post(pinned_url, content=body, headers={**headers, **host_header},
                                   extensions=extensions, follow_redirects=False)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"receiver answered HTTP {status_code}"
        except UnresolvedTarget as exc:
            error = exc.detail
        except UnsafeTarget as exc:
            error, refused = f"refused: {exc.detail}", True
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        stop_at(AFTER_SEND, failpoint)

        now = clock.now()
        with db.transaction() as session:
            values: dict[str, object] = {"last_status_code": status_code, "last_error": error,
                                         "lease_until": None}
            if error is None:
                values.update(status=DeliveryStatus.delivered, delivered_at=now)
                report.delivered += 1
            elif refused or attempts >= max_attempts:
                values.update(status=DeliveryStatus.failed)
                report.failed += 1
            else:
                values.update(status=DeliveryStatus.pending, next_attempt_at=now + backoff(attempts))
                report.retrying += 1
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id,
                       WebhookDelivery.status == DeliveryStatus.sending)
                .values(**values)
            )
    return report
