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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi.encoders import jsonable_encoder

from dropline.adapters.payments import Card
from dropline.clock import Clock
from dropline.config import Settings
from dropline.customers.service import customer_for_session
from dropline.db import Database
from dropline.drops import gate as gates
from dropline.drops import rules, service
from dropline.drops.batch import Job, write_batch
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
from dropline.security import token_digest

SESSION_CACHE_SECONDS = 5.0
DROP_CACHE_SECONDS = 2.0
MAX_BATCH = 400
PARALLEL_BATCHES = 2


class BatchWriter:
    """Collects jobs while earlier batches are being written: with ``parallel`` batches in
    flight, every job that arrives meanwhile joins the next one, so batches grow with load and
    a lone shopper is written at once (no timer)."""

    def __init__(self, write: Callable[[list[Job]], list[Job]], *, max_batch: int = MAX_BATCH,
                 parallel: int = PARALLEL_BATCHES) -> None:
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[Job, asyncio.Future[Job]]] = []
        self._slots = asyncio.Semaphore(parallel)
        self._executor = ThreadPoolExecutor(parallel, thread_name_prefix="drop-batch")
        self._pumping = False

    async def submit(self, job: Job) -> Job:
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        if not self._pumping:
            self._pumping = True
            asyncio.get_running_loop().create_task(self._pump())
        return await future

    async def _pump(self) -> None:
        try:
            while self._pending:
                await self._slots.acquire()
                batch, self._pending = self._pending[:self._max], self._pending[self._max:]
                if not batch:
                    self._slots.release()
                    break
                asyncio.get_running_loop().create_task(self._run(batch))
                await asyncio.sleep(0)  # let arrivals join the next batch
        finally:
            self._pumping = False
            if self._pending and not self._pumping:
                self._pumping = True
                asyncio.get_running_loop().create_task(self._pump())

    async def _run(self, batch: list[tuple[Job, asyncio.Future[Job]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            by_drop: dict[int, list[tuple[Job, asyncio.Future[Job]]]] = {}
            for item in batch:
                by_drop.setdefault(item[0].drop_id, []).append(item)
            for items in by_drop.values():
                try:
                    await loop.run_in_executor(self._executor, self._write,
                                               [job for job, _ in items])
                except Exception as exc:  # noqa: BLE001 - the whole batch failed: each request learns why
                    for _, future in items:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for job, future in items:
                    if not future.done():
                        future.set_result(job)
        finally:
            self._slots.release()


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
        self.writer = BatchWriter(lambda jobs: write_batch(
            db, clock=clock, settings=settings, provider=provider, jobs=jobs))
        self._sessions: dict[str, tuple[float, int, str]] = {}
        self._drops: dict[int, tuple[float, DropFacts]] = {}
        self._load_lock = threading.Lock()
        self._resynced: dict[int, float] = {}
        self._drop_lock: asyncio.Lock | None = None

    # --- caches -----------------------------------------------------------------------------

    async def customer(self, token: str | None) -> tuple[int, str]:
        """(customer id, session digest) of a live session, cached briefly."""
        if not token or len(token) > 200:
            raise NotAuthenticated("sign in first (POST /api/v1/sessions)")
        digest = token_digest(token)
        now = time.monotonic()
        cached = self._sessions.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1], digest

        def look_up() -> int | None:
            with self.db.transaction() as session:
                customer = customer_for_session(session, clock=self.clock, token=token)
                return customer.id if customer is not None else None

        customer_id = await anyio.to_thread.run_sync(look_up)
        if customer_id is None:
            raise NotAuthenticated("sign in first (POST /api/v1/sessions)")
        if len(self._sessions) > 200_000:
            self._sessions.clear()
        self._sessions[digest] = (now + SESSION_CACHE_SECONDS, customer_id, digest)
        return customer_id, digest

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


async def _await_stored(hot: HotPath, drop_id: int, reference: str) -> tuple[int, Any]:
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


def _has_order(hot: HotPath, reference: str) -> bool:
    with hot.db.transaction() as session:
        return find_by_checkout_reference(session, reference) is not None


async def _answer_existing(hot: HotPath, *, drop_id: int, reference: str, fp: str, path: str,
                           card: Card) -> tuple[int, Any]:
    try:
        status, answer = await anyio.to_thread.run_sync(_resume, hot, reference, card)
    except PaymentDeclined as exc:
        await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=402,
                                body=jsonable_encoder(exc.to_problem(path)))
        raise
    await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=status,
                            body=answer)
    return status, answer


async def purchase(hot: HotPath, *, drop_id: int, body: PurchaseCreate, path: str,
                   session_token: str | None, idempotency_key: str | None, ip: str,
                   early_access: service.EarlyAccess) -> tuple[int, Any]:
    """Returns (status, body) for a paid order or a stored replay; raises DomainError."""
    key = idempotency.validate_key(idempotency_key)
    customer_id, digest = await hot.customer(session_token)
    facts = await hot.drop(drop_id)
    reference = idempotency.reference_for(f"customer:{customer_id}", key)
    fp = idempotency.fingerprint("POST", path, body.model_dump(mode="json"))
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
    verdict = await hot.gate.take(request)
    if verdict.outcome == "missing":
        await anyio.to_thread.run_sync(hot.load, drop_id)
        verdict = await hot.gate.take(request)
    if verdict.outcome == "replay":
        stored = gates.stored_outcome(verdict.values[0])
        return stored if stored is not None else await _await_stored(hot, drop_id, reference)
    if verdict.outcome != "ok":
        if verdict.outcome in ("limit", "soldout", "token_used", "ended") \
                and await anyio.to_thread.run_sync(_has_order, hot, reference):
            # Redis forgot this key (flushed, lost) but PostgreSQL has its order: a replay.
            return await _answer_existing(hot, drop_id=drop_id, reference=reference, fp=fp,
                                          path=path, card=Card(**body.card.model_dump()))
        raise _refusal(verdict, facts)

    card = Card(**body.card.model_dump())
    job = Job(drop_id=drop_id, customer_id=customer_id, lines=sorted(lines.items()),
              pools=quantities, card=card, shipping_address=body.shipping_address.model_dump(),
              reference=reference, token_n=token_n,
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
        await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=201,
                                body=detail)
        return 201, detail
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

