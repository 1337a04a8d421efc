"""The gated purchase path: ``POST /api/v1/drops/{id}/purchase`` when Redis is configured.

Per request, on the event loop (no thread hop on the common path): the body validated by
pydantic, the customer's session from a short in-process cache (``SESSION_CACHE_SECONDS``: a
revoked session may still buy for up to that long in a worker that saw it; a session's expiry
is still honoured exactly), the admission token's HMAC, one EVALSHA (``drops.gate``), then an
await on the per-worker batch writer (``drops.batch``), which answers only once the order is
committed and paid. Without Redis, or on SQLite, the endpoint runs ``drops.flows.purchase`` as
before (correct, slower).

Idempotency: the gate keeps each key's state in Redis (pending, then the stored response), and
the orders' unique checkout reference in PostgreSQL catches a replay Redis has forgotten.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi.encoders import jsonable_encoder
from pydantic_core import to_json
from redis.exceptions import RedisError
from starlette.responses import Response

from dropline import bulk
from dropline.adapters.payments import Card
from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.drops import gate as gates
from dropline.drops import rules, service
from dropline.drops.batch import Job, write_batch
from dropline.drops.coalesce import Coalescer
from dropline.drops.errors import (
    AdmissionRefused,
    DropEnded,
    LimitReached,
    NotOpenYet,
    SoldOut,
)
from dropline.drops.limits import DropLimitSettings
from dropline.drops.models import SHARED_POOL, HoldSource
from dropline.drops.schemas import PurchaseCreate
from dropline.errors import (
    DomainError,
    IdempotencyKeyReused,
    NotAuthenticated,
    NotFound,
    OutOfStock,
    PaymentDeclined,
    RateLimited,
    RequestInFlight,
    ServiceUnavailable,
)
from dropline.idempotency import service as idempotency
from dropline.orders import flows as orders
from dropline.orders.api import order_read
from dropline.orders.service import find_by_checkout_reference
from dropline.risk.actor import set_actor
from dropline.security import token_digest
from dropline.web.problems import PROBLEM_JSON, problem_headers

SESSION_CACHE_SECONDS = 5.0
DROP_CACHE_SECONDS = 2.0
# Up to 1,000 orders a batch: in three interleaved pairs of bench runs (5,000 units, 3,000
# shoppers) 1,000 sold a median 3,054 units/s against 2,676 with 400.
MAX_BATCH = 1000
# While a batch is being written, a second one waits up to BATCH_LINGER_SECONDS for MIN_BATCH
# jobs rather than writing a handful: a batch costs ~15 round trips and 3 commits whatever its
# size (in one crowd, 89 of 125 batches held a single order before this).
MIN_BATCH = 32
BATCH_LINGER_SECONDS = 0.005
MAX_GATE_BATCH = 500
PARALLEL_BATCHES = 2
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
    the small caches. Created on the first gated request (inside the running event loop)."""

    def __init__(self, *, db: Database, clock: Clock, settings: Settings, provider: Any,
                 redis_url: str, prefix: str = gates.DEFAULT_PREFIX) -> None:
        import redis
        import redis.asyncio as aredis

        self.db, self.clock, self.settings, self.provider = db, clock, settings, provider
        # A bounded pool that waits for a free connection rather than failing under a crowd.
        self.gate = gates.RedisGate(aredis.Redis(connection_pool=aredis.BlockingConnectionPool
                                                 .from_url(redis_url, max_connections=64,
                                                           timeout=10)), prefix=prefix)
        self.sync_gate = gates.SyncGate(redis.Redis.from_url(redis_url), prefix=prefix)
        self.limits = DropLimitSettings()
        # Each round trip of the hot path is coalesced across concurrent requests
        # (drops.coalesce): sessions in one query, gate verdicts in one pipeline, orders in
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
        self._sessions: dict[str, tuple[float, int]] = {}
        self._drops: dict[int, tuple[float, DropFacts]] = {}
        self._load_lock = threading.Lock()
        self._resynced: dict[int, float] = {}
        self._drop_lock: asyncio.Lock | None = None
        self._loading: dict[int, asyncio.Future[None]] = {}

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

    async def _resolve_sessions(self, digests: list[str]) -> list[int | None]:
        """Live (unrevoked, unexpired) sessions by token digest, as ``sessions.owner_of``."""
        found = dict(await self._read(
            "SELECT token_hash, customer_id FROM customer_sessions WHERE token_hash = ANY(%s) "
            "AND revoked_at IS NULL AND expires_at > %s", (list(set(digests)), self.clock.now())))
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
        (``drops.batch.write_batch``, in a thread), then every outcome stored in Redis in one
        pipeline, before any request is answered."""
        loop = asyncio.get_running_loop()
        failed: dict[int, BaseException] = {}
        by_drop: dict[int, list[Job]] = {}
        for job in jobs:
            by_drop.setdefault(job.drop_id, []).append(job)
        for items in by_drop.values():
            try:
                await loop.run_in_executor(self._writers, lambda items=items: write_batch(
                    self.db, clock=self.clock, settings=self.settings, provider=self.provider,
                    jobs=items))
            except Exception as exc:  # noqa: BLE001 - those requests learn why (503)
                failed.update((id(job), exc) for job in items)
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
                    reconcile(self.db, self.sync_gate, clock=self.clock, drop_id=drop_id)
                finally:
                    client.delete(lock)
                return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not client.exists(meta):
            time.sleep(0.02)  # another worker is rebuilding it

    def resync(self, drop_id: int) -> None:
        now = time.monotonic()
        if self._resynced.get(drop_id, 0.0) > now - 1.0:
            return
        self._resynced[drop_id] = now
        log.warning("drop %d: PostgreSQL refused units the gate had given; rebuilding the "
                    "gate's keys from PostgreSQL", drop_id)
        self.load(drop_id, force=True)


def reconcile(db: Database, gate: gates.SyncGate, *, clock: Clock, drop_id: int
              ) -> dict[str, int]:
    """Expired holds reclaimed in PostgreSQL, then the drop's Redis keys rebuilt from it."""
    with db.transaction() as session:
        drop = service.get_drop(session, drop_id)
        service.reclaim_and_offer(session, clock=clock, drop=drop)
    with db.transaction() as session:
        return gate.reconcile(session, drop=service.get_drop(session, drop_id), now=clock.now())


_hot_lock = threading.Lock()


def hot_path(app_state: Any) -> HotPath | None:
    """The worker's HotPath, or None when the gate is off (no Redis URL, or SQLite)."""
    hot = getattr(app_state, "drops_hot", None)
    if hot is not None or getattr(app_state, "drops_hot_off", False):
        return hot
    services = app_state.services
    with _hot_lock:
        if getattr(app_state, "drops_hot", None) is None:
            url = services.settings.redis_url
            if not url or services.db.is_sqlite:
                app_state.drops_hot_off = True
                return None
            app_state.drops_hot = HotPath(
                db=services.db, clock=services.clock, settings=services.settings,
                provider=services.payments, redis_url=url,
                prefix=getattr(app_state, "drops_redis_prefix", gates.DEFAULT_PREFIX))
    return app_state.drops_hot


def forget_drop(app_state: Any, drop_id: int) -> None:
    """After a reschedule or restock has committed: the drop's Redis state is dropped, so the
    next purchase rebuilds it from PostgreSQL (``reconcile``); the worker's facts cache
    (``DROP_CACHE_SECONDS``) is cleared too. Other workers see the new facts within that TTL."""
    hot = hot_path(app_state)
    if hot is not None:
        hot._drops.pop(drop_id, None)
        hot.sync_gate.client.delete(hot.sync_gate.keys(drop_id).meta)


# --- the two-step path (hold, then checkout) draws from the same count -----------------------


def _per_pool(takes: list[list[int]]) -> dict[int, int]:
    pools: dict[int, int] = {}
    for pool, _slot, quantity in takes:
        pools[pool] = pools.get(pool, 0) + quantity
    return pools


def gate_hold_placed(app_state: Any, hold: Any) -> None:
    """A hold committed in PostgreSQL (which checked the limit and the units) is entered in
    the gate: its units taken, and an entry in the sorted set by expiry, so the script gives
    them back by itself once it lapses. If Redis disagrees, the drop's keys are rebuilt."""
    hot = hot_path(app_state)
    if hot is None:
        return
    verdict = hot.sync_gate.take_sync(gates.TakeRequest(
        drop_id=hold.drop_id, customer_id=hold.customer_id, quantities=_per_pool(hold.takes),
        now_ms=int(hot.clock.now().timestamp() * 1000), lead_ms=10**12,
        hold_member=gates.hold_member(hold.id),
        hold_expires_ms=int(hold.expires_at.timestamp() * 1000)))
    if verdict.outcome == "missing":
        hot.load(hold.drop_id)  # the rebuild reads this hold from PostgreSQL
    elif verdict.outcome != "ok":
        hot.resync(hold.drop_id)


def gate_hold_closed(app_state: Any, hold: Any, *, units_back: bool) -> None:
    """A hold was paid for (its units stay taken) or released / declined (``units_back``).
    A hold the script already pruned as expired gave its units back then: not twice."""
    hot = hot_path(app_state)
    if hot is None:
        return
    present = hot.sync_gate.convert_hold_sync(hold.drop_id, gates.hold_member(hold.id))
    if present and units_back:
        hot.sync_gate.give_back_sync(hold.drop_id, customer_id=hold.customer_id,
                                     quantities=_per_pool(hold.takes))


# --- the request ----------------------------------------------------------------------------


def _refusal(verdict: gates.Verdict, facts: DropFacts) -> DomainError:
    o, v = verdict.outcome, verdict.values
    if o == "mismatch":
        return IdempotencyKeyReused("this Idempotency-Key was used for a different request; "
                                    "use a new key for a new request")
    if o == "ended":
        return DropEnded(f"{facts.name} has ended")
    if o == "notopen":
        opens = datetime.fromtimestamp(int(v[0]) / 1000, tz=facts.starts_at.tzinfo)
        return NotOpenYet(f"{facts.name} opens to you at {opens.isoformat()}",
                          opens_at=opens.isoformat())
    if o == "ratelimited":
        return RateLimited("too many requests to drops; slow down",
                           retry_after=max(1, int(v[0])))
    if o == "token_used":
        return AdmissionRefused("this admission token has already been used; ask for a new one")
    if o == "limit":
        return LimitReached(f"the limit is {v[1]} per person; you have {v[0]} held or bought",
                            limit=int(v[1]), already=int(v[0]))
    return SoldOut(f"{facts.name} has not enough left; join the waitlist",
                   drop_id=facts.drop_id)


def _refused(reason: str, facts: DropFacts) -> DomainError:
    if reason == "limit":
        return LimitReached(f"the limit is {facts.per_person_limit} per person",
                            limit=facts.per_person_limit)
    if reason == "token_used":
        return AdmissionRefused("this admission token has already been used; ask for a new one")
    if reason == "ended":
        return DropEnded(f"{facts.name} has ended")
    if reason == "unavailable":
        return OutOfStock("this variant is no longer for sale")
    return SoldOut(f"{facts.name} has not enough left; join the waitlist",
                   drop_id=facts.drop_id)


async def _await_stored(hot: HotPath, drop_id: int, reference: str) -> tuple[int, str]:
    """A replay of a pending purchase waits for the first attempt's answer (bounded)."""
    deadline = time.monotonic() + hot.settings.idempotency_lease_seconds
    while time.monotonic() < deadline:
        stored = await hot.gate.stored(drop_id, reference)
        if stored is None:
            break
        if (outcome := gates.stored_outcome(stored)) is not None:
            return outcome
        await asyncio.sleep(0.02)
    raise RequestInFlight("the first request with this Idempotency-Key is still being "
                          "processed; retry in a few seconds", retry_after=2)


def _resume(hot: HotPath, reference: str, card: Card) -> tuple[int, Any]:
    """The reference already has an order (a replay Redis forgot): answer from PostgreSQL,
    charging it first if a crash left it pending (as ``orders.flows`` resumes)."""
    db, clock = hot.db, hot.clock
    with db.transaction() as session:
        order = find_by_checkout_reference(session, reference)
        assert order is not None
        payment = orders.latest_payment(session, order.id)
    order_id = orders.pay_order(
        db, clock=clock, provider=hot.provider, order=order,
        payment=payment, card=card,
        on_payment_failed=lambda session, failed: service.return_units_of_order(
            session, clock=clock, order=failed))
    with db.transaction() as session:
        return 201, jsonable_encoder(order_read(session, order_id))


async def _answer_existing(hot: HotPath, *, drop_id: int, reference: str, fp: str, path: str,
                           card: Card) -> tuple[int, str]:
    try:
        status, answer = await anyio.to_thread.run_sync(_resume, hot, reference, card)
    except PaymentDeclined as exc:
        await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=402,
                                body=jsonable_encoder(exc.to_problem(path)))
        raise
    await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=status,
                            body=answer)
    return status, json.dumps(answer, separators=(",", ":"))


async def purchase(hot: HotPath, *, drop_id: int, body: PurchaseCreate, path: str,
                   session_token: str | None, idempotency_key: str | None, ip: str,
                   early_access: service.EarlyAccess) -> tuple[int, str]:
    """Returns (status, JSON text) for a paid order or a stored replay; raises DomainError.
    Three awaits on the common path, each coalesced with the other requests of the moment:
    the session (when not cached), the gate's verdict, the batch that writes the order."""
    key = idempotency.validate_key(idempotency_key)
    customer_id, digest = await hot.customer(session_token)
    set_actor(f"customer:{customer_id}")
    facts = await hot.drop(drop_id)
    reference = idempotency.reference_for(f"customer:{customer_id}", key)
    # The request's fingerprint for its idempotency record: the validated body serialised by
    # pydantic-core (fields in model order, so the same request always hashes the same).
    fp = hashlib.sha256(b"POST " + path.encode() + b"\n" + body.model_dump_json().encode()
                        ).hexdigest()
    quantities: dict[int, int] = {}
    lines: dict[int, int] = {}
    for line in body.lines:
        if line.variant_id not in facts.pools:
            raise NotFound(f"variant {line.variant_id} is not in this drop")
        pool = facts.pools[line.variant_id]
        quantities[pool] = quantities.get(pool, 0) + line.quantity
        lines[line.variant_id] = lines.get(line.variant_id, 0) + line.quantity
    now = hot.clock.now()
    token_n, lead_ms = 0, 0
    if facts.queue_enabled:
        if not body.admission_token:
            raise AdmissionRefused("this drop has a waiting room: join it and ask for an "
                                   "admission token (POST /api/v1/drops/{id}/admission)")
        try:
            token_n = rules.verify_admission(
                body.admission_token[:1000], secret=hot.settings.secret_key, drop_id=drop_id,
                customer_id=customer_id, session=rules.session_binding(digest), now=now).n
        except rules.BadToken as exc:
            raise AdmissionRefused(str(exc)) from None
        lead_ms = 7 * 24 * 3600 * 1000  # the token proves the shopper's own opening time
    elif now < facts.starts_at and facts.early_access_minutes:
        def lead() -> int:
            with hot.db.transaction() as session:
                return early_access(session, customer_id=customer_id, at=now)
        lead_ms = min(await anyio.to_thread.run_sync(lead),
                      facts.early_access_minutes) * 60_000
    request = gates.TakeRequest(
        drop_id=drop_id, customer_id=customer_id, quantities=quantities,
        now_ms=int(now.timestamp() * 1000), reference=reference, fingerprint=fp,
        token_n=token_n, lead_ms=lead_ms, identity_limit=hot.limits.identity_per_minute,
        ip=ip, ip_limit=hot.limits.ip_per_minute)
    verdict = await hot.takes.submit(request)
    if verdict.outcome == "missing":
        await hot.loaded(drop_id)
        verdict = await hot.takes.submit(request)
    if verdict.outcome == "replay":
        stored = gates.stored_outcome(verdict.values[0])
        if stored is not None:
            return stored
        try:
            return await _await_stored(hot, drop_id, reference)
        except RequestInFlight:
            # Still pending after the lease: the first attempt's worker died (or its outcome
            # could not be stored). PostgreSQL knows whether its order was written: answer
            # from it, else forget the key so the client's retry starts afresh (the order's
            # unique checkout reference still makes it one order).
            if await hot.order_lookups.submit(reference):
                return await _answer_existing(hot, drop_id=drop_id, reference=reference,
                                              fp=fp, path=path,
                                              card=Card(**body.card.model_dump()))
            await hot.gate.forget(drop_id, reference)
            raise
    if verdict.outcome != "ok":
        if verdict.outcome in ("limit", "soldout", "token_used", "ended") \
                and await hot.order_lookups.submit(reference):
            # Redis forgot this key (flushed, lost) but PostgreSQL has its order: a replay.
            return await _answer_existing(hot, drop_id=drop_id, reference=reference, fp=fp,
                                          path=path, card=Card(**body.card.model_dump()))
        raise _refusal(verdict, facts)

    card = Card(**body.card.model_dump())
    job = Job(drop_id=drop_id, customer_id=customer_id, lines=sorted(lines.items()),
              pools=quantities, card=card, shipping_address=body.shipping_address.model_dump(),
              reference=reference, token_n=token_n, fingerprint=fp,
              source=HoldSource.queue if facts.queue_enabled else HoldSource.direct)
    try:
        await hot.writer.submit(job)
    except Exception:  # noqa: BLE001 - answered as 503 below
        # Units leak only if step 1 committed; otherwise they go back. Either way the key is
        # forgotten, so the client's retry (same key) runs again and resumes from PostgreSQL.
        if not job.order_id:
            await hot.gate.give_back(drop_id, customer_id=customer_id, quantities=quantities,
                                     reference=reference)
        else:
            await hot.gate.forget(drop_id, reference)
        raise ServiceUnavailable("the order could not be written; nothing was charged twice. "
                                 "Retry with the same Idempotency-Key", retry_after=1) from None
    kind, detail = job.outcome or ("refused", "soldout")
    if kind == "paid":
        return 201, job.response  # stored in Redis by the batch, with the others
    if kind == "declined":
        await hot.gate.give_back(drop_id, customer_id=customer_id, quantities=quantities)
        error = PaymentDeclined(f"the card was declined ({detail['decline_code']}); nothing "
                                "was charged", **detail)
        await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=402,
                                body=jsonable_encoder(error.to_problem(path)))
        raise error
    if (kind, detail) == ("refused", "soldout"):
        # PostgreSQL had fewer units than Redis believed (units held through the database
        # path, or a stale Redis): giving these back would keep Redis too high, so the drop's
        # keys are rebuilt from PostgreSQL instead (at most once a second per worker).
        await hot.gate.forget(drop_id, reference)
        await anyio.to_thread.run_sync(hot.resync, drop_id)
        raise _refused("soldout", facts)
    await hot.gate.give_back(drop_id, customer_id=customer_id, quantities=quantities,
                             reference=reference)
    if kind == "existing":
        return await _answer_existing(hot, drop_id=drop_id, reference=reference, fp=fp,
                                      path=path, card=card)
    raise _refused(str(detail), facts)


async def respond(hot: HotPath, *, drop_id: int, body: PurchaseCreate, path: str,
                  session_token: str | None, idempotency_key: str | None, ip: str,
                  early_access: service.EarlyAccess) -> Response:
    """``purchase`` as an HTTP response: the JSON text sent as it is (encoded once, shared
    with the Redis record), refusals as problem+json, a silent gate as 503. Used by the
    FastAPI route and by the fast lane (``drops.lane``) alike."""
    try:
        status_code, text = await purchase(
            hot, drop_id=drop_id, body=body, path=path, session_token=session_token,
            idempotency_key=idempotency_key, ip=ip, early_access=early_access)
    except RedisError:
        return _problem(ServiceUnavailable(
            "the drop's gate is not answering; retry with the same Idempotency-Key in a "
            "moment", retry_after=2), path)
    except DomainError as exc:
        return _problem(exc, path)
    if status_code >= 400:
        return EncodedJSON(text, status_code, PROBLEM_JSON,
                           headers={"Idempotent-Replayed": "true"})
    return EncodedJSON(text, status_code, "application/json")


def _problem(exc: DomainError, path: str) -> EncodedJSON:
    """``web.problems.domain_error_response``, encoded by pydantic-core (FastAPI's
    ``jsonable_encoder`` walks the body in Python: a sell-out answers thousands of these)."""
    return EncodedJSON(to_json(exc.to_problem(path)), exc.status, PROBLEM_JSON,
                       headers=problem_headers(exc))


class EncodedJSON(Response):
    """A response whose JSON is already encoded (the order as the batch encoded it, the same
    text stored in Redis): its headers built once, as two ASGI messages. Starlette's
    ``Response`` would re-derive them per instance, a few microseconds per purchase."""

    def __init__(self, body: str | bytes, status_code: int, media_type: str, *,
                 headers: dict[str, str] | None = None) -> None:
        self.body = body.encode() if isinstance(body, str) else body
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.raw_headers = [(b"content-type", media_type.encode()),
                            (b"content-length", str(len(self.body)).encode())]
        self.raw_headers += [(name.lower().encode("latin-1"), value.encode("latin-1"))
                             for name, value in (headers or {}).items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})
