"""Background drop work. Not needed for correctness (a missed take reclaims expired holds
itself); it makes lapsed units come back, and waitlist offers go out, without waiting for the
next shopper. Idempotent: a second pass finds nothing to do."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dropline.clock import Clock
from dropline.db import Database
from dropline.drops import service
from dropline.drops.models import Drop


def reclaim_drops(db: Database, *, clock: Clock) -> int:
    """One pass over drops that are open (or opening within the hour): returns drops visited."""
    now = clock.now()
    with db.transaction() as session:
        drop_ids = list(session.scalars(select(Drop.id).where(
            Drop.starts_at <= now + timedelta(hours=1), Drop.ends_at > now)))
    for drop_id in drop_ids:  # a transaction per drop: one busy drop does not hold up others
        with db.transaction() as session:
            service.reclaim_and_offer(session, clock=clock,
                                      drop=service.get_drop(session, drop_id))
    return len(drop_ids)
