"""The waiting room: join (a fair, computable place), position and ETA, and admission tokens
(signed, session-bound, single-use). The rules themselves are pure, in ``drops.rules``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, tuple_, update
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.drops import rules
from dropline.drops.errors import AdmissionRefused, DropEnded, NotAdmittedYet
from dropline.drops.models import Drop, DropQueueEntry
from dropline.drops.service import EarlyAccess, insert_for, state_of
from dropline.errors import NotFound

ADMISSION_TOKEN_SECONDS = 600


@dataclass(frozen=True)
class QueueStatus:
    drop_id: int
    position: int
    opens_at: datetime  # this shopper's own opening (earlier for early-access members)
    admitted_at: datetime
    admitted: bool
    state: rules.DropState


def join_queue(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
               ip: str = "") -> DropQueueEntry:
    """Idempotent: joining again keeps the first place."""
    now = clock.now()
    if now >= drop.ends_at:
        raise DropEnded(f"{drop.name} has ended")
    statement = insert_for(session)(DropQueueEntry).values(
        drop_id=drop.id, customer_id=customer_id, joined_at=now, ip=ip[:64],
        sort_key=rules.queue_sort_key(joined_at=now, starts_at=drop.starts_at),
        tokens_issued=0, tokens_used=0)
    session.execute(statement.on_conflict_do_nothing(index_elements=["drop_id", "customer_id"]))
    return queue_entry(session, drop_id=drop.id, customer_id=customer_id)


def queue_entry(session: Session, *, drop_id: int, customer_id: int) -> DropQueueEntry:
    entry = session.scalar(select(DropQueueEntry).where(
        DropQueueEntry.drop_id == drop_id, DropQueueEntry.customer_id == customer_id))
    if entry is None:
        raise NotFound("you have not joined this drop's waiting room")
    return entry


def queue_position(session: Session, entry: DropQueueEntry) -> int:
    # A row comparison: one condition the (drop_id, sort_key) index can bound, where the OR
    # of the two cases (earlier sort key, or the same one and a lower id) would not be.
    ahead = session.scalar(
        select(func.count()).select_from(DropQueueEntry).where(
            DropQueueEntry.drop_id == entry.drop_id,
            tuple_(DropQueueEntry.sort_key, DropQueueEntry.id) < (entry.sort_key, entry.id)))
    return int(ahead or 0) + 1


def _place(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
           early_access: EarlyAccess) -> tuple[int, datetime, datetime]:
    """(position, this shopper's own opening, their admission time)."""
    entry = queue_entry(session, drop_id=drop.id, customer_id=customer_id)
    position = queue_position(session, entry)
    return (position, *admission_schedule(session, clock=clock, drop=drop,
                                          customer_id=customer_id, position=position,
                                          early_access=early_access))


def admission_schedule(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                       position: int, early_access: EarlyAccess) -> tuple[datetime, datetime]:
    """(this shopper's own opening, their admission time) for their place in the queue."""
    lead = early_access(session, customer_id=customer_id, at=clock.now()) \
        if drop.early_access_minutes else 0
    opens = rules.opening_time(starts_at=drop.starts_at, lead_minutes=lead,
                               drop_early_access_minutes=drop.early_access_minutes)
    return opens, rules.admission_time(opens_at=opens, position=position,
                                       per_minute=drop.admission_per_minute)


def check_admitted(drop: Drop, *, now: datetime, position: int, admitted_at: datetime) -> None:
    """Raises ``DropEnded`` once the drop has ended, ``NotAdmittedYet`` (with the place, when,
    and a Retry-After) before this shopper's admission time."""
    if now >= drop.ends_at:
        raise DropEnded(f"{drop.name} has ended")
    if now < admitted_at:
        wait = max(1, int((admitted_at - now).total_seconds() + 0.999))
        raise NotAdmittedYet(f"you are number {position}; admitted at "
                             f"{admitted_at.isoformat()}", position=position,
                             admitted_at=admitted_at.isoformat(), retry_after=wait)


def sign_token(*, secret: str, drop_id: int, customer_id: int, session_digest: str, n: int,
               now: datetime) -> Admission:
    """The ``n``-th admission token of this shopper for this drop, bound to their session."""
    expires = now + timedelta(seconds=ADMISSION_TOKEN_SECONDS)
    token = rules.sign_admission(rules.AdmissionClaims(
        drop_id=drop_id, customer_id=customer_id,
        session=rules.session_binding(session_digest), n=n,
        expires=int(expires.timestamp())), secret=secret)
    return Admission(token=token, expires_at=expires)


def queue_status(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                 early_access: EarlyAccess) -> QueueStatus:
    position, opens, admitted_at = _place(session, clock=clock, drop=drop,
                                          customer_id=customer_id, early_access=early_access)
    return QueueStatus(drop_id=drop.id, position=position, opens_at=opens,
                       admitted_at=admitted_at, admitted=clock.now() >= admitted_at,
                       state=state_of(session, clock=clock, drop=drop))


@dataclass(frozen=True)
class Admission:
    token: str
    expires_at: datetime


def issue_admission(session: Session, *, clock: Clock, secret: str, drop: Drop,
                    customer_id: int, session_digest: str,
                    early_access: EarlyAccess) -> Admission:
    """A signed, session-bound, single-use token, issued only once the schedule admits this
    shopper (their own opening time, then their place at the drop's rate)."""
    position, _, admitted_at = _place(session, clock=clock, drop=drop,
                                      customer_id=customer_id, early_access=early_access)
    now = clock.now()
    check_admitted(drop, now=now, position=position, admitted_at=admitted_at)
    n = session.execute(
        update(DropQueueEntry)
        .where(DropQueueEntry.drop_id == drop.id, DropQueueEntry.customer_id == customer_id)
        .values(tokens_issued=DropQueueEntry.tokens_issued + 1)
        .returning(DropQueueEntry.tokens_issued)).scalar_one()
    return sign_token(secret=secret, drop_id=drop.id, customer_id=customer_id,
                      session_digest=session_digest, n=n, now=now)


def redeem_admission(session: Session, *, clock: Clock, secret: str, drop: Drop,
                     customer_id: int, session_digest: str, token: str | None) -> None:
    """Checks the token (signature, drop, customer, session, expiry) and uses it up: the
    conditional UPDATE succeeds once per token, so a replay, even a concurrent one, fails."""
    if not token:
        raise AdmissionRefused("this drop has a waiting room: join it and ask for an "
                               "admission token (POST /api/v1/drops/{id}/admission)")
    try:
        claims = rules.verify_admission(token[:1000], secret=secret, drop_id=drop.id,
                                        customer_id=customer_id,
                                        session=rules.session_binding(session_digest),
                                        now=clock.now())
    except rules.BadToken as exc:
        raise AdmissionRefused(str(exc)) from None
    used = session.execute(
        update(DropQueueEntry)
        .where(DropQueueEntry.drop_id == drop.id, DropQueueEntry.customer_id == customer_id,
               DropQueueEntry.tokens_used < claims.n, DropQueueEntry.tokens_issued >= claims.n)
        .values(tokens_used=claims.n)).rowcount
    if used != 1:
        raise AdmissionRefused("this admission token has already been used; ask for a new one")


@dataclass(frozen=True)
class RoomCount:
    drop_id: int
    waiting: int  # joined, not yet given an admission token
    admitted: int  # given at least one admission token


def room_counts(session: Session, *, now: datetime) -> list[RoomCount]:
    """Each drop not yet ended that has a waiting room in use: who waits and who was
    admitted. One grouped query over the queue entries of live drops (``/metrics``)."""
    admitted = func.sum(case((DropQueueEntry.tokens_issued > 0, 1), else_=0))
    rows = session.execute(
        select(DropQueueEntry.drop_id, func.count(), admitted)
        .join(Drop, Drop.id == DropQueueEntry.drop_id)
        .where(Drop.ends_at > now)
        .group_by(DropQueueEntry.drop_id)).all()
    return [RoomCount(drop_id, total - int(admitted or 0), int(admitted or 0))
            for drop_id, total, admitted in rows]
