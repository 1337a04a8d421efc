"""Idempotent requests, after the IETF ``Idempotency-Key`` header draft:

* same key, same request        -> the stored response, replayed (nothing runs twice)
* same key, different request   -> 422 ``IdempotencyKeyReused``
* same key while the first runs -> 409 ``RequestInFlight``

Keys are scoped to the caller (a customer or a token), so two callers cannot collide. A
request that crashed mid-way leaves its record "in flight"; once its lease runs out the next
retry resumes it, and the operation itself is written to be resumable (see orders.flows).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic_core import to_json
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.db import Database
from dropline.errors import IdempotencyKeyReused, InvalidInput, RequestInFlight
from dropline.idempotency.models import IdempotencyRecord, KeyState

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claim:
    record_id: int
    reference: str  # stable per (principal, key): what the operation de-duplicates on


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


def validate_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise InvalidInput("this request needs an Idempotency-Key header (a unique value per "
                           "attempt, e.g. a UUID); reuse it when you retry", field="Idempotency-Key")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidInput(f"Idempotency-Key must be printable ASCII, at most {MAX_KEY_LENGTH} "
                           "characters", field="Idempotency-Key")
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    """The request's fingerprint for its idempotency record: method, path and the validated
    body as pydantic-core serialises it (a model's fields in model order, so the same request
    always hashes the same, whatever the order of its JSON keys). One definition for the
    database path (``idempotency.web``) and the drop engine (``drops.crowd.purchase``), so a
    key's record means the same request on both."""
    return hashlib.sha256(method.upper().encode() + b" " + path.encode() + b"\n"
                          + to_json(body)).hexdigest()


def reference_for(principal: str, key: str) -> str:
    return hashlib.sha256(f"{principal}\x00{key}".encode()).hexdigest()


def begin(
    db: Database, *, clock: Clock, principal: str, key: str, request_fingerprint: str,
    lease_seconds: int,
) -> Claim | Replay:
    now = clock.now()
    reference = reference_for(principal, key)
    try:
        with db.transaction() as session:
            record = IdempotencyRecord(
                principal=principal, key=key, fingerprint=request_fingerprint,
                state=KeyState.in_flight, locked_at=now, created_at=now,
            )
            session.add(record)
            session.flush()
            return Claim(record.id, reference)
    except IntegrityError:
        pass  # the key exists: decide from the stored record

    with db.transaction() as session:
        record = session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key))
        if record is None:  # expired and purged between our two statements: vanishingly rare
            raise RequestInFlight("retry this request")
        if record.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request; use a new key for a "
                "new request")
        if record.state is KeyState.completed:
            return Replay(record.response_status or 200, record.response_body)
        if record.locked_at > now - timedelta(seconds=lease_seconds):
            raise RequestInFlight("the first request with this Idempotency-Key is still being "
                                  "processed; retry in a few seconds", retry_after=2)
        # The first attempt's lease ran out (it crashed): take the record over, atomically.
        taken = session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record.id,
                   IdempotencyRecord.locked_at == record.locked_at,
                   IdempotencyRecord.state == KeyState.in_flight)
            .values(locked_at=now)
        )
        if taken.rowcount != 1:
            raise RequestInFlight("another retry of this request is running", retry_after=2)
        return Claim(record.id, reference)


def complete(session: Session, *, clock: Clock, claim: Claim, status: int, body: Any) -> None:
    """Stores the response in the caller's transaction, together with the work it describes."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == claim.record_id)
        .values(state=KeyState.completed, response_status=status, response_body=body,
                completed_at=clock.now())
    )


def release(db: Database, *, claim: Claim) -> None:
    """Forget an in-flight key after an unexpected failure, so the client's retry runs anew."""
    with db.transaction() as session:
        session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.id == claim.record_id,
            IdempotencyRecord.state == KeyState.in_flight))


def recorded_fingerprint(session: Session, *, principal: str, key: str) -> str | None:
    """The fingerprint of the first request made with this key, or None if none is recorded:
    what a replay is matched against when only PostgreSQL remembers the key (the drop engine
    after a Redis loss)."""
    return session.scalar(select(IdempotencyRecord.fingerprint).where(
        IdempotencyRecord.principal == principal, IdempotencyRecord.key == key))


def purge_expired(session: Session, *, clock: Clock, retention_hours: int) -> int:
    """Completed records past the retention, and in-flight ones as old (their lease lapsed long
    ago: the drop engine records its keys in flight beside the order, see
    ``drops.crowd.writer``)."""
    cutoff = clock.now() - timedelta(hours=retention_hours)
    result = session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.created_at < cutoff))
    return result.rowcount
