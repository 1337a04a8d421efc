"""Background drop work. Not needed for correctness (a missed take reclaims expired holds
itself, and the gate's next take reclaims lapsed purchase leases); it makes lapsed units come
back, and waitlist offers go out, without waiting for the next shopper. Idempotent: a second
pass finds nothing to do."""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy import select

from dropline.clock import Clock
from dropline.db import Database
from dropline.drops import service
from dropline.drops.crowd.gate import DropKeys, SyncGate, reconcile
from dropline.drops.models import Drop


def reclaim_drops(db: Database, *, clock: Clock, redis_url: str | None,
                  redis_prefix: str = "dl:") -> int:
    """One pass over drops that are open (or opening within the hour): returns drops visited.
    With the Redis gate on (``redis_url``: the settings' ``redis.url``; PostgreSQL only), a drop
    whose gate keys are missing (Redis restarted, flushed) is rebuilt from the database now,
    rather than by the next shopper, and lapsed purchase leases (a purchase that died before
    its order was written) give their units and admissions back."""
    now = clock.now()
    with db.transaction() as session:
        drop_ids = list(session.scalars(select(Drop.id).where(
            Drop.starts_at <= now + timedelta(hours=1), Drop.ends_at > now)))
    for drop_id in drop_ids:  # a transaction per drop: one busy drop does not hold up others
        with db.transaction() as session:
            service.reclaim_and_offer(session, clock=clock,
                                      drop=service.get_drop(session, drop_id))
    _rebuild_missing_gates(db, clock=clock, drop_ids=drop_ids, redis_url=redis_url,
                           prefix=redis_prefix)
    return len(drop_ids)


def _rebuild_missing_gates(db: Database, *, clock: Clock, drop_ids: list[int],
                           redis_url: str | None, prefix: str) -> None:
    if not redis_url or db.is_sqlite or not drop_ids:
        return
    gate = SyncGate(redis.Redis.from_url(redis_url, socket_timeout=5), prefix=prefix)
    now_ms = int(clock.now().timestamp() * 1000)
    try:
        for drop_id in drop_ids:
            if not gate.client.exists(DropKeys(prefix, drop_id).meta):
                reconcile(db, gate, clock=clock, drop_id=drop_id)
            else:
                gate.sweep_leases_sync(drop_id, now_ms=now_ms)
    finally:
        gate.client.close()
