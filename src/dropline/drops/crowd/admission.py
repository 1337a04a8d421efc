"""Admission tokens for a crowd: ``POST /api/v1/drops/{id}/admission`` through the hot path.

At a drop's start everyone in the waiting room asks for a token at once. Through the FastAPI
route each request pays the ORM for the session, the drop, the entry, its place and the
increment, each a query with its own Python, so a crowd waits seconds for its tokens. Here the
requests of the moment are answered together, as the purchases are (``drops.crowd.coalesce``):
the sessions in one query (``HotPath.customer``), then one transaction for the batch
(``admit_batch``): each drop read once, every shopper's place from one pass over the drop's
queue, the tokens counted by one UPDATE; the tokens are then signed on the event loop.

The rules and the answers are the route's (``waiting_room.issue_admission``, whose checks
``admission_schedule`` and ``check_admitted`` are shared): one count against the identity and
IP limits first (429), then 404 for an unknown drop or a shopper who has not joined, 409 once
the drop has ended or while this shopper is not admitted yet (with their place, when, and a
Retry-After), else a signed, session-bound, single-use token (200, ``no-store``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from dropline import bulk
from dropline.clock import Clock
from dropline.config import DropsSettings
from dropline.db import Database
from dropline.drops import waiting_room
from dropline.drops.models import Drop
from dropline.drops.schemas import AdmissionRead
from dropline.drops.service import EarlyAccess
from dropline.errors import DomainError, NotFound, RateLimited
from dropline.ratelimit import RateLimiter, identity_key, ip_key

# Every shopper's place in one pass: the same order as ``waiting_room.queue_position``.
PLACES_SQL = (
    "SELECT customer_id, position FROM (SELECT customer_id, row_number() OVER "
    "(ORDER BY sort_key, id) AS position FROM drop_queue_entries WHERE drop_id = %s) q "
    "WHERE customer_id = ANY(%s)")
# k tokens more for each customer (a shopper may ask twice in one batch); their new count. The
# rows are locked in id order first, so two workers' batches that share a shopper (one person,
# two tabs) wait for each other instead of deadlocking.
COUNT_SQL = (
    "WITH c AS (SELECT * FROM unnest(%s::bigint[], %s::int[]) AS c(customer_id, k)), "
    "locked AS (SELECT e.id, c.k FROM drop_queue_entries e JOIN c USING (customer_id) "
    "WHERE e.drop_id = %s ORDER BY e.id FOR UPDATE OF e) "
    "UPDATE drop_queue_entries e SET tokens_issued = e.tokens_issued + locked.k FROM locked "
    "WHERE e.id = locked.id RETURNING e.customer_id, e.tokens_issued")


@dataclass
class Ask:
    """One shopper's request for a token; ``n`` (their token's number) or ``error`` is set by
    ``admit_batch``."""

    drop_id: int
    customer_id: int
    ip: str
    n: int = 0
    now: datetime | None = None
    error: DomainError | None = None


def _limited(limiter: RateLimiter, limits: DropsSettings, ask: Ask) -> DomainError | None:
    for key, limit in ((identity_key(ask.customer_id), limits.identity_per_minute),
                       (ip_key(ask.ip), limits.ip_per_minute)):
        retry_after = limiter.hit(key, limit=limit, window_seconds=60)
        if retry_after is not None:
            return RateLimited("too many requests to drops; slow down", retry_after=retry_after)
    return None


def admit_batch(db: Database, *, clock: Clock, limiter: RateLimiter, limits: DropsSettings,
                early_access: EarlyAccess, asks: list[Ask]) -> list[Ask]:
    """Blocking (a thread): each ask counted against the limits, then one transaction for
    those within them. Sets ``n`` or ``error`` on every ask and returns them."""
    by_drop: dict[int, list[Ask]] = {}
    for ask in asks:
        ask.error = _limited(limiter, limits, ask)
        if ask.error is None:
            by_drop.setdefault(ask.drop_id, []).append(ask)
    if not by_drop:
        return asks
    with db.transaction() as session:
        now = clock.now()
        for drop_id, group in by_drop.items():
            drop = session.get(Drop, drop_id)
            if drop is None:
                for ask in group:
                    ask.error = NotFound(f"drop {drop_id} not found")
                continue
            places = dict(bulk.execute(session, PLACES_SQL, (
                drop_id, sorted({ask.customer_id for ask in group}))))
            admitted: list[Ask] = []
            for ask in group:
                ask.now = now
                position = places.get(ask.customer_id)
                if position is None:
                    ask.error = NotFound("you have not joined this drop's waiting room")
                    continue
                _, admitted_at = waiting_room.admission_schedule(
                    session, clock=clock, drop=drop, customer_id=ask.customer_id,
                    position=int(position), early_access=early_access)
                try:
                    waiting_room.check_admitted(drop, now=now, position=int(position),
                                                admitted_at=admitted_at)
                except DomainError as exc:
                    ask.error = exc
                    continue
                admitted.append(ask)
            if not admitted:
                continue
            wanted = Counter(ask.customer_id for ask in admitted)
            customers = sorted(wanted)
            issued = dict(bulk.execute(session, COUNT_SQL, (
                customers, [wanted[c] for c in customers], drop_id)))
            for ask in admitted:  # a shopper's asks take their new numbers in order
                if ask.customer_id not in issued:  # left the queue since it was read
                    ask.error = NotFound("you have not joined this drop's waiting room")
                    continue
                wanted[ask.customer_id] -= 1
                ask.n = int(issued[ask.customer_id]) - wanted[ask.customer_id]
    return asks


def token_json(ask: Ask, *, secret: str, session_digest: str) -> bytes:
    """The route's 200 body (``AdmissionRead``) for an admitted ask."""
    assert ask.now is not None and ask.n > 0
    issued = waiting_room.sign_token(secret=secret, drop_id=ask.drop_id,
                                     customer_id=ask.customer_id, session_digest=session_digest,
                                     n=ask.n, now=ask.now)
    return AdmissionRead(token=issued.token, expires_at=issued.expires_at
                         ).model_dump_json().encode()
