"""Payments written and settled in bulk (PostgreSQL), for the paths that write orders in
batches (``orders.bulk``): the rows and audit rows ``orders.flows`` and the ORM's listeners
write for one payment at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from dropline import audit, bulk
from dropline.payments.models import Payment, PaymentStatus

COLUMNS = [
    ("id", "bigint"), ("order_id", "bigint"), ("provider", "text"),
    ("idempotency_key", "text"), ("status", "text"), ("amount", "bigint"),
    ("currency", "text"), ("card_last4", "text"), ("card_fingerprint", "text"),
    ("created_at", "timestamptz"), ("updated_at", "timestamptz")]


def insert_payments(session: Session, *, now: datetime, rows: Sequence[dict[str, Any]],
                    actors: Sequence[str]) -> None:
    """Pending payments (dicts of ``COLUMNS``, ids taken beforehand) in one INSERT, with the
    audit trail's create rows (``actors[i]`` created ``rows[i]``)."""
    bulk.insert_dicts(session, "payments", COLUMNS, rows)
    audit.record_bulk(session, Payment, "create", at=now, entries=[
        (row["id"], actor, {k: (None, v) for k, v in row.items()})
        for row, actor in zip(rows, actors, strict=True)])


class Settlement(NamedTuple):
    """A pending payment's charge result."""

    payment_id: int
    actor: str
    succeeded: bool
    provider_ref: str | None
    decline_code: str | None
    written_at: datetime | None  # the pending row's updated_at


def settle_payments(session: Session, *, now: datetime, provider_name: str,
                    settlements: Sequence[Settlement]) -> set[int]:
    """Payments leave pending only once (guarded: a payment no longer pending is left as it
    is): succeeded or declined, with the provider's reference, in one UPDATE, and the audit
    rows of the moves. Returns the ids settled here."""
    statuses = [PaymentStatus.succeeded if s.succeeded else PaymentStatus.declined
                for s in settlements]
    settled = {row[0] for row in bulk.execute(
        session, "UPDATE payments AS p SET status = u.st, provider = %s, provider_ref = u.ref, "
        "decline_code = u.code, updated_at = %s FROM unnest(%b::bigint[], %b::text[], "
        "%b::text[], %b::text[]) AS u(id, st, ref, code) WHERE p.id = u.id "
        "AND p.status = 'pending' RETURNING p.id",
        (provider_name, now, [s.payment_id for s in settlements], [st.name for st in statuses],
         [s.provider_ref for s in settlements], [s.decline_code for s in settlements]))}
    audit.record_bulk(session, Payment, "update", at=now, entries=[
        (s.payment_id, s.actor, {
            "status": (PaymentStatus.pending, st), "provider": ("pending", provider_name),
            "provider_ref": (None, s.provider_ref), "decline_code": (None, s.decline_code),
            "updated_at": (s.written_at, now)})
        for s, st in zip(settlements, statuses, strict=True) if s.payment_id in settled])
    return settled
