"""What a worker's engine purchases share, used when Redis is configured (and PostgreSQL).

``HotPath`` holds the async gate (``drops.crowd.gate``, with its pipelined connection), a
blocking gate for loads and the two-step hold flows, the coalescers that turn concurrent
requests' round trips into one each (sessions, gate verdicts, order look-ups, the batch writer:
``drops.crowd.coalesce``) and the short caches of sessions and drop facts. One purchase is
``drops.crowd.purchase``; the app builds its ``HotPath`` in ``drops.crowd.wiring``. Without
Redis, or on SQLite, the endpoint runs ``drops.flows.purchase`` (correct, slower).
"""


from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import redis
import redis.asyncio as aredis
from pydantic_core import to_json
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from dropline import bulk
from dropline.clock import Clock
from dropline.config import DropsSettings, Settings
from dropline.db import Database
from dropline.drops import service
from dropline.drops.crowd import gate as gates
from dropline.drops.crowd.admission import Ask, admit_batch
from dropline.drops.crowd.coalesce import Coalescer
from dropline.drops.crowd.counters import DropCounters
from dropline.drops.crowd.writer import Job, write_batch
from dropline.drops.models import SHARED_POOL
from dropline.errors import NotAuthenticated
from dropline.payments.provider import CardToken
from dropline.ratelimit import RateLimiter
from dropline.security import token_digest

SESSION_CACHE_SECONDS = 5.0
DROP_CACHE_SECONDS = 2.0
# Orders per batch at most: a batch's fixed cost (round trips, commits) is shared by more
# orders, while a batch still commits well within a purchase's latency budget.
MAX_BATCH = 1000
# While a batch is being written, a second one waits up to BATCH_LINGER_SECONDS for MIN_BATCH
# jobs rather than writing a handful: a batch costs ~15 round trips and 3 commits whatever its
# size (in one crowd, 89 of 125 batches held a single order before this).
MIN_BATCH = 32
BATCH_LINGER_SECONDS = 0.005
MAX_GATE_BATCH = 500
PARALLEL_BATCHES = 2
# After a shopper's admission to a drop, this worker checks the drop's gate keys again only
# after this long (``prepare``).
PREPARED_SECONDS = 30.0
log = logging.getLogger("dropline.drops")


@dataclass(frozen=True)
class DropFacts:
    """What the hot path needs of a drop, cached for ``DROP_CACHE_SECONDS`` per worker."""

    drop_id: int
    pools: dict[int, int]  # variant -> pool
    queue_enabled: bool
    starts_at: datetime
    ends_at: datetime
    early_access_minutes: int
    per_person_limit: int
    name: str


class HotPath:
    """Per worker process: the async gate, a blocking gate (for loads), the batch writer and
    the small caches. Created on the first engine request (inside the running event loop).

    From the app: ``admission_limits`` (the limiter and limits the admission routes count
    against), ``early_access`` (the membership seam), ``read_order`` (an order as its API
    answer, for replays answered from PostgreSQL); each is asked when needed, so what the app
    holds at that moment is used."""

    def __init__(self, *, db: Database, clock: Clock, settings: Settings, provider: Any,
                 redis_url: str, prefix: str = gates.DEFAULT_PREFIX,
                 admission_limits: Callable[[], tuple[RateLimiter, DropsSettings]],
                 early_access: Callable[[], service.EarlyAccess],
                 read_order: Callable[[Session, int], Any],
                 counters: DropCounters | None = None) -> None:
        self.db, self.clock, self.settings, self.provider = db, clock, settings, provider
        # A bounded pool that waits for a free connection rather than failing under a crowd.
        self.gate = gates.RedisGate(aredis.Redis(connection_pool=aredis.BlockingConnectionPool
                                                 .from_url(redis_url, max_connections=64,
                                                           timeout=10)), prefix=prefix)
        self.sync_gate = gates.SyncGate(redis.Redis.from_url(redis_url), prefix=prefix)
        self.limits = settings.drops
        # What /metrics reports of this worker's purchases (plain integers, no locks): the
        # process's, shared with the database path when the app passes them.
        self.counters = counters if counters is not None else DropCounters()
        # Each round trip of the hot path is coalesced across concurrent requests
        # (drops.crowd.coalesce): sessions in one query, gate verdicts in one pipeline, orders in
        # batched transactions. Blocking database work runs in threads of its own.
        self._writers = ThreadPoolExecutor(PARALLEL_BATCHES, thread_name_prefix="drop-batch")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="drop-read")
        self.writer: Coalescer[Job, Job] = Coalescer(
            self._write_jobs, max_batch=MAX_BATCH, parallel=PARALLEL_BATCHES,
            min_batch=MIN_BATCH, linger=BATCH_LINGER_SECONDS)
        self.takes: Coalescer[gates.TakeRequest, gates.Verdict] = Coalescer(
            self.gate.take_many, max_batch=MAX_GATE_BATCH)
        self.session_lookups: Coalescer[str, int | None] = Coalescer(
            self._resolve_sessions, max_batch=MAX_BATCH)
        # A refused purchase whose key Redis may have forgotten: does PostgreSQL have its
        # order? (At a sell-out, every late shopper asks at once.)
        self.order_lookups: Coalescer[str, bool] = Coalescer(
            self._have_orders, max_batch=MAX_BATCH)
        # Admission tokens for the crowd at a drop's start, a transaction per batch
        # (drops.crowd.admission); the limiter and the early-access seam are the app's, as
        # the routes'.
        self.admissions: Coalescer[Ask, Ask] = Coalescer(self._admit, max_batch=MAX_BATCH)
        # The provider's in-memory cards (payments.provider.KnownCards), if it keeps any.
        self._known_card: Callable[[str], CardToken | None] = getattr(
            provider, "known_card", None) or (lambda reference: None)
        self.admission_limits = admission_limits
        self.early_access = early_access
        self.read_order = read_order
        self._sessions: dict[str, tuple[float, int]] = {}
        self._drops: dict[int, tuple[float, DropFacts]] = {}
        self._load_lock = threading.Lock()
        self._resynced: dict[int, float] = {}
        self._drop_lock: asyncio.Lock | None = None
        self._loading: dict[int, asyncio.Future[None]] = {}
        self._prepared: dict[int, float] = {}

    # --- caches -----------------------------------------------------------------------------

    async def customer(self, token: str | None) -> tuple[int, str]:
        """(customer id, session digest) of a live session, cached briefly. Sessions not in
        the cache are resolved together: one query for all the shoppers arriving at once."""
        if not token or len(token) > 200:
            raise NotAuthenticated("sign in first (POST /api/v1/sessions)")
        digest = token_digest(token)
        now = time.monotonic()
        cached = self._sessions.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1], digest
        customer_id = await self.session_lookups.submit(digest)
        if customer_id is None:
            raise NotAuthenticated("sign in first (POST /api/v1/sessions)")
        if len(self._sessions) > 200_000:
            self._sessions.clear()
        self._sessions[digest] = (now + SESSION_CACHE_SECONDS, customer_id)
        return customer_id, digest

    async def card(self, reference: str) -> CardToken:
        """The card behind a payment method reference: from the provider's memory when it
        has it, else ``describe_card`` in a thread (it may ask the database or the provider's
        API); raises ``UnknownPaymentMethod``."""
        card = self._known_card(reference)
        if card is None:
            card = await anyio.to_thread.run_sync(self.provider.describe_card, reference)
        return card

    async def _resolve_sessions(self, digests: list[str]) -> list[int | None]:
        """Live (unrevoked, unexpired, not idle) sessions by token digest, as
        ``sessions.owner_of`` finds them (without sliding their idle expiry: the next page the
        shopper opens does that)."""
        now = self.clock.now()
        idle_since = now - timedelta(days=self.settings.web.session_idle_days)
        found = dict(await self._read(
            "SELECT token_hash, customer_id FROM customer_sessions WHERE token_hash = ANY(%s) "
            "AND revoked_at IS NULL AND expires_at > %s AND last_seen_at > %s",
            (list(set(digests)), now, idle_since)))
        return [found.get(digest) for digest in digests]

    async def _have_orders(self, references: list[str]) -> list[bool]:
        found = {row[0] for row in await self._read(
            "SELECT checkout_reference FROM orders WHERE checkout_reference = ANY(%s)",
            (list(set(references)),))}
        return [reference in found for reference in references]

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """One query (``bulk.execute``) in a reader thread."""
        def query() -> list[tuple[Any, ...]]:
            with self.db.transaction() as session:
                return bulk.execute(session, sql, params)

        return await asyncio.get_running_loop().run_in_executor(self._readers, query)

    async def _write_jobs(self, jobs: list[Job]) -> list[Job | BaseException]:
        """One coalesced batch: each drop's jobs written, charged and settled
        (``drops.crowd.writer.write_batch``, in a thread), then every outcome stored in Redis in one
        pipeline, before any request is answered."""
        loop = asyncio.get_running_loop()
        failed: dict[int, BaseException] = {}
        by_drop: dict[int, list[Job]] = {}
        for job in jobs:
            by_drop.setdefault(job.drop_id, []).append(job)
        for items in by_drop.values():
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._writers, lambda items=items: write_batch(
                    self.db, clock=self.clock, settings=self.settings, provider=self.provider,
                    jobs=items, on_written=self._keep_leases))
            except Exception as exc:  # noqa: BLE001 - those requests learn why (503)
                failed.update((id(job), exc) for job in items)
            self.counters.batch_written(len(items), time.perf_counter() - started)
        records = []
        for job in jobs:
            if id(job) not in failed and job.outcome is not None and job.outcome[0] == "paid":
                job.response = to_json(job.outcome[1]).decode()
                records.append((job.drop_id, job.reference, job.fingerprint, 201, job.response))
        if records:
            try:
                await self.gate.complete_many(records)
            except RedisError:
                # The orders are paid and committed: they are answered. A replay then finds
                # its key pending in Redis and, once the lease lapses, is answered from
                # PostgreSQL by the unique checkout reference (``purchase``).
                log.warning("could not store %d drop outcomes in Redis", len(records))
        return [failed.get(id(job), job) for job in jobs]

    def _keep_leases(self, written: list[Job]) -> None:
        """The gate keeps the leases of orders just committed (their units stay taken), in
        the writer's thread before the charge. If Redis fails here the leases lapse later
        and give units back that PostgreSQL has sold: the gate then admits a few too many,
        which the guarded writes refuse (never an oversell), and the keys are rebuilt."""
        try:
            self.sync_gate.end_leases_sync(written[0].drop_id, "keep",
                                           [job.lease for job in written if job.lease])
        except RedisError as exc:
            log.warning("drop %d: could not keep %d leases in Redis: %s", written[0].drop_id,
                        len(written), exc)

    async def _admit(self, asks: list[Ask]) -> list[Ask]:
        limiter, limits = self.admission_limits()
        early_access = self.early_access()
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, lambda: admit_batch(
                self.db, clock=self.clock, limiter=limiter, limits=limits,
                early_access=early_access, asks=asks))

    async def drop(self, drop_id: int) -> DropFacts:
        cached = self._drops.get(drop_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if self._drop_lock is None:
            self._drop_lock = asyncio.Lock()
        async with self._drop_lock:  # one read per expiry, not one per waiting request
            cached = self._drops.get(drop_id)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            return await self._read_drop(drop_id)

    async def _read_drop(self, drop_id: int) -> DropFacts:
        now = time.monotonic()

        def read() -> DropFacts:
            with self.db.transaction() as session:
                drop = service.get_drop(session, drop_id)
                return DropFacts(
                    drop_id=drop.id, queue_enabled=drop.queue_enabled,
                    pools={v.variant_id: (SHARED_POOL if v.cap is None else v.variant_id)
                           for v in service.drop_variants(session, drop.id)},
                    starts_at=drop.starts_at, ends_at=drop.ends_at,
                    early_access_minutes=drop.early_access_minutes,
                    per_person_limit=drop.per_person_limit, name=drop.name)

        facts = await anyio.to_thread.run_sync(read)
        self._drops[drop_id] = (now + DROP_CACHE_SECONDS, facts)
        return facts

    async def loaded(self, drop_id: int) -> None:
        """``load`` for the requests of this worker that found the drop's keys missing, all
        at once (a crowd's first batch): one thread runs it, the others await the same run."""
        loading = self._loading.get(drop_id)
        if loading is None:
            loading = asyncio.get_running_loop().run_in_executor(self._readers, self.load,
                                                                 drop_id)
            self._loading[drop_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(drop_id, None))
        await asyncio.shield(loading)

    def load(self, drop_id: int, *, force: bool = False) -> None:
        """The drop's keys are missing in Redis (or ``force``): rebuild them from PostgreSQL,
        once across workers (a Redis lock); the others wait for it, bounded. A crowd's first
        requests all find the keys missing: only one rebuilds, and nobody sleeps while
        holding this process's lock (which once serialised a whole crowd behind it)."""
        client, meta = self.sync_gate.client, self.sync_gate.keys(drop_id).meta
        if not force and client.exists(meta):
            return
        lock = f"{self.gate.prefix}load:{drop_id}"
        with self._load_lock:
            if not force and client.exists(meta):
                return
            if client.set(lock, "1", nx=True, ex=10):
                try:
                    gates.reconcile(self.db, self.sync_gate, clock=self.clock, drop_id=drop_id)
                finally:
                    client.delete(lock)
                return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not client.exists(meta):
            time.sleep(0.02)  # another worker is rebuilding it

    async def prepared(self, drop_id: int) -> None:
        """``prepare`` from the event loop: the first admission of a drop in this worker (per
        ``PREPARED_SECONDS``) waits while a reader thread builds the keys; the others do not."""
        if self.due_for_prepare(drop_id):
            await asyncio.get_running_loop().run_in_executor(self._readers, self.prepare_now,
                                                             drop_id)

    def due_for_prepare(self, drop_id: int) -> bool:
        """True once per ``PREPARED_SECONDS`` per drop (and marks it done)."""
        now = time.monotonic()
        if self._prepared.get(drop_id, 0.0) > now:
            return False
        self._prepared[drop_id] = now + PREPARED_SECONDS
        return True

    def prepare_now(self, drop_id: int) -> None:
        """The drop's gate keys built if missing (``load``). A failure is only logged: the
        admission has committed and its token is answered, and the purchase path rebuilds
        missing keys itself."""
        try:
            self.load(drop_id)
        except Exception as exc:  # noqa: BLE001 - see above
            self._prepared.pop(drop_id, None)
            log.warning("drop %d: could not prepare the gate's keys at admission: %s",
                        drop_id, exc)

    def resync(self, drop_id: int) -> None:
        now = time.monotonic()
        if self._resynced.get(drop_id, 0.0) > now - 1.0:
            return
        self._resynced[drop_id] = now
        log.warning("drop %d: PostgreSQL refused units the gate had given; rebuilding the "
                    "gate's keys from PostgreSQL", drop_id)
        self.load(drop_id, force=True)


    def forget(self, drop_id: int) -> None:
        """The drop's Redis state dropped, so the next purchase rebuilds it from PostgreSQL
        (``gate.reconcile``); this worker's facts cache cleared too."""
        self._drops.pop(drop_id, None)
        self._prepared.pop(drop_id, None)
        self.sync_gate.client.delete(self.sync_gate.keys(drop_id).meta)

    # --- the two-step path (hold, then checkout) draws from the same count -------------------

    def hold_placed(self, hold: Any) -> None:
        """A hold committed in PostgreSQL (which checked the limit and the units) is entered
        in the gate: its units taken, and an entry in the sorted set by expiry, so the script
        gives them back by itself once it lapses. If Redis disagrees, the drop's keys are
        rebuilt."""
        verdict = self.sync_gate.take_sync(gates.TakeRequest(
            drop_id=hold.drop_id, customer_id=hold.customer_id,
            quantities=_per_pool(hold.takes),
            now_ms=int(self.clock.now().timestamp() * 1000), lead_ms=10**12,
            hold_member=gates.hold_member(hold.id),
            hold_expires_ms=int(hold.expires_at.timestamp() * 1000)))
        if verdict.outcome == "missing":
            self.load(hold.drop_id)  # the rebuild reads this hold from PostgreSQL
        elif verdict.outcome != "ok":
            self.resync(hold.drop_id)

    def hold_closed(self, hold: Any, *, units_back: bool) -> None:
        """A hold was paid for (its units stay taken) or released / declined
        (``units_back``). A hold the script already pruned as expired gave its units back
        then: not twice."""
        present = self.sync_gate.convert_hold_sync(hold.drop_id, gates.hold_member(hold.id))
        if present and units_back:
            self.sync_gate.give_back_sync(hold.drop_id, customer_id=hold.customer_id,
                                          quantities=_per_pool(hold.takes))


def _per_pool(takes: list[list[int]]) -> dict[int, int]:
    pools: dict[int, int] = {}
    for pool, _slot, quantity in takes:
        pools[pool] = pools.get(pool, 0) + quantity
    return pools
