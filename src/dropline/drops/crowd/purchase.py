"""One engine purchase: ``POST /api/v1/drops/{id}/purchase`` through the Redis gate.

Per request, on the event loop (no thread hop on the common path): the body validated by
pydantic, the customer's session from a short in-process cache
(``worker_state.SESSION_CACHE_SECONDS``: a revoked session may still buy for up to that long in
a worker that saw it; a session's expiry is still honoured exactly), the admission token's HMAC, one EVALSHA (``drops.crowd.gate``),
then an await on the worker's batch writer (``drops.crowd.writer``), which answers only once
the order is committed and paid. ``respond`` is shared by the fast lane (``drops.crowd.lane``)
and the FastAPI route. The per-worker machinery (caches, coalescers, the gate's clients) is
``drops.crowd.worker_state``.

Idempotency: the gate keeps each key's state in Redis with its request's fingerprint (pending,
then the stored answer: the order, or the refusal, whether the script, this module or
PostgreSQL decided it), so a replay gets its first answer marked ``Idempotent-Replayed`` and the
same key with another body is 422. The order's batch records the key and fingerprint in
PostgreSQL too (``idempotency_records``), and the orders' unique checkout reference catches a
replay Redis has forgotten: it is answered from the order only if its body is the first one's.
A replay of a pending key waits, at most until the first attempt's lease lapses; then it is
answered from the first attempt's order if there is one, else it takes afresh (the gate gave
the dead attempt's units and admission back) or, if the lease still lives, is 409 with the
time left as ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi.encoders import jsonable_encoder
from pydantic_core import to_json
from redis.exceptions import RedisError
from starlette.responses import Response

from dropline.audit import set_actor
from dropline.drops import rules, service
from dropline.drops.crowd import gate as gates
from dropline.drops.crowd.worker_state import DropFacts, HotPath
from dropline.drops.crowd.writer import Job
from dropline.drops.errors import (
    AdmissionRefused,
    DropEnded,
    LimitReached,
    NotOpenYet,
    SoldOut,
)
from dropline.drops.models import HoldSource
from dropline.drops.schemas import PurchaseCreate
from dropline.errors import (
    DomainError,
    IdempotencyKeyReused,
    NotFound,
    OutOfStock,
    PaymentDeclined,
    PaymentRequiresAction,
    RateLimited,
    RequestInFlight,
    ServiceUnavailable,
    UnknownPaymentMethod,
)
from dropline.failpoints import AFTER_TAKE, stop_at
from dropline.idempotency import service as idempotency
from dropline.orders import flows as orders
from dropline.orders.models import OrderStatus
from dropline.orders.service import find_by_checkout_reference
from dropline.payments.provider import CardToken
from dropline.problem_json import PROBLEM_JSON, problem_headers


def _key_reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused("this Idempotency-Key was used for a different request; use a "
                                "new key for a new request")


def _refusal(verdict: gates.Verdict, facts: DropFacts) -> DomainError:
    o, v = verdict.outcome, verdict.values
    if o == "mismatch":
        return _key_reused()
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


def _refused(reason: str | DomainError, facts: DropFacts) -> DomainError:
    if isinstance(reason, DomainError):  # decided by the batch (a discount code's refusal)
        return reason
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


Answer = tuple[int, str, bool]  # status, JSON text, replayed (a stored answer sent again)


def _replayed(stored: tuple[int, str] | gates.Verdict, facts: DropFacts, path: str) -> Answer:
    """A key's stored answer, sent again: a stored refusal the gate decided is worded as a
    fresh one would be."""
    if isinstance(stored, gates.Verdict):
        refusal = _refusal(stored, facts)
        return refusal.status, to_json(refusal.to_problem(path)).decode(), True
    return stored[0], stored[1], True


def _in_flight(retry_after: int = 2) -> RequestInFlight:
    return RequestInFlight("the first request with this Idempotency-Key is still being "
                           "processed; retry in a few seconds", retry_after=retry_after)


async def _await_stored(hot: HotPath, drop_id: int, reference: str, *, lease_left_ms: int
                        ) -> tuple[int, str] | gates.Verdict:
    """A replay of a pending purchase waits for the first attempt's answer, at most until the
    first attempt's lease lapses (``lease_left_ms``; bounded by the idempotency lease)."""
    wait = min(float(hot.settings.idempotency.lease_seconds), max(lease_left_ms, 0) / 1000)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        stored = await hot.gate.stored(drop_id, reference)
        if stored is None:
            break
        if (outcome := gates.stored_outcome(stored)) is not None:
            return outcome
        await asyncio.sleep(0.02)
    raise _in_flight()


@dataclass(frozen=True)
class KeyOfOrder:
    """Who made an order's key: the principal and the key, for its recorded fingerprint."""

    principal: str
    key: str


class _KeyReused(Exception):
    """The order's key was first used with another body; ``answer`` is that order's, if paid."""

    def __init__(self, original: str, answer: Any) -> None:
        self.original, self.answer = original, answer


def _resume(hot: HotPath, reference: str, card: CardToken, *, owner: KeyOfOrder,
            fp: str) -> tuple[int, Any]:
    """The reference already has an order (a replay Redis forgot): answer from PostgreSQL,
    charging it first if a crash left it pending (as ``orders.flows`` resumes), but only for
    the body the key was first used with (its fingerprint recorded beside the order)."""
    db, clock = hot.db, hot.clock
    with db.transaction() as session:
        order = find_by_checkout_reference(session, reference)
        assert order is not None
        original = idempotency.recorded_fingerprint(session, principal=owner.principal,
                                                    key=owner.key)
        if original is not None and original != fp:
            answer = jsonable_encoder(hot.read_order(session, order.id)) \
                if order.status is OrderStatus.paid else None
            raise _KeyReused(original, answer)
        payment = orders.latest_payment(session, order.id)
    order_id = orders.pay_order(
        db, clock=clock, provider=hot.provider, order=order,
        payment=payment, card=card,
        on_payment_failed=lambda session, failed: service.return_units_of_order(
            session, clock=clock, order=failed))
    with db.transaction() as session:
        return 201, jsonable_encoder(hot.read_order(session, order_id))


async def _answer_existing(hot: HotPath, *, drop_id: int, reference: str, fp: str, path: str,
                           card: CardToken, owner: KeyOfOrder) -> Answer:
    try:
        status, answer = await anyio.to_thread.run_sync(
            lambda: _resume(hot, reference, card, owner=owner, fp=fp))
    except PaymentDeclined as exc:
        await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=402,
                                body=jsonable_encoder(exc.to_problem(path)))
        raise
    except _KeyReused as reused:
        # Redis holds the key again as its first request made it (the paid order), or forgets
        # it (an order still pending resumes on the first body's retry).
        if reused.answer is not None:
            await hot.gate.complete(drop_id, reference=reference, fingerprint=reused.original,
                                    status=201, body=reused.answer)
        else:
            await hot.gate.forget(drop_id, reference)
        raise _key_reused() from None
    await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=status,
                            body=answer)
    return status, json.dumps(answer, separators=(",", ":")), True


async def _store_refusal(hot: HotPath, *, drop_id: int, reference: str, fp: str, path: str,
                         refusal: DomainError) -> DomainError:
    """A refusal decided after the gate (by PostgreSQL) stored as the key's answer, as the
    script stores its own: the refusal, to raise."""
    await hot.gate.complete_many([(drop_id, reference, fp, refusal.status,
                                   to_json(refusal.to_problem(path)).decode())])
    return refusal


def _screen(hot: HotPath, facts: DropFacts, body: PurchaseCreate, *, customer_id: int,
            digest: str, now: datetime, token: str | None
            ) -> tuple[dict[int, int], dict[int, int], int]:
    """What is checked before the gate: the variants (units per pool and per variant) and,
    with a waiting room, the admission token's signature (its single use is the gate's)."""
    quantities: dict[int, int] = {}
    lines: dict[int, int] = {}
    for line in body.lines:
        if line.variant_id not in facts.pools:
            raise NotFound(f"variant {line.variant_id} is not in this drop")
        pool = facts.pools[line.variant_id]
        quantities[pool] = quantities.get(pool, 0) + line.quantity
        lines[line.variant_id] = lines.get(line.variant_id, 0) + line.quantity
    if not facts.queue_enabled:
        return quantities, lines, 0
    if not token:
        raise AdmissionRefused("this drop has a waiting room: join it and ask for an "
                               "admission token (POST /api/v1/drops/{id}/admission)")
    try:
        return quantities, lines, rules.verify_admission(
            token[:1000], secret=hot.settings.web.secret_key, drop_id=facts.drop_id,
            customer_id=customer_id, session=rules.session_binding(digest), now=now).n
    except rules.BadToken as exc:
        raise AdmissionRefused(str(exc)) from None


async def _first_answer(hot: HotPath, *, drop_id: int, reference: str, fp: str, path: str,
                        facts: DropFacts, refusal: DomainError) -> Answer:
    """A refusal decided before the gate is stored as the key's answer unless the key has one
    already: then that one holds (a replay, even once its admission token has expired), or
    the body differs (422). One round trip, on this refusal only."""
    problem = to_json(refusal.to_problem(path)).decode()
    stored = await hot.gate.record_first(drop_id, reference,
                                         f"D|{fp}|{refusal.status}|{problem}")
    if stored is None:
        raise refusal
    if gates.fingerprint_of(stored) != fp:
        raise _key_reused()
    outcome = gates.stored_outcome(stored)
    if outcome is None:
        raise RequestInFlight("the first request with this Idempotency-Key is still being "
                              "processed; retry in a few seconds", retry_after=2)
    return _replayed(outcome, facts, path)


async def purchase(hot: HotPath, *, drop_id: int, body: PurchaseCreate, path: str,
                   session_token: str | None, idempotency_key: str | None, ip: str,
                   early_access: service.EarlyAccess,
                   admission_token: str | None = None) -> Answer:
    """Returns (status, JSON text, replayed) for a paid order or a stored answer sent again;
    raises DomainError.
    ``admission_token``: one the caller issued in this same request (the storefront's form),
    used instead of the body's and, like the body's absent one, not part of the fingerprint.
    Three awaits on the common path, each coalesced with the other requests of the moment:
    the session (when not cached), the gate's verdict, the batch that writes the order."""
    key = idempotency.validate_key(idempotency_key)
    customer_id, digest = await hot.customer(session_token)
    set_actor(f"customer:{customer_id}")
    facts = await hot.drop(drop_id)
    principal = f"customer:{customer_id}"
    reference = idempotency.reference_for(principal, key)
    fp = idempotency.fingerprint("POST", path, body)  # as the database path's records
    now = hot.clock.now()
    try:
        quantities, lines, token_n = _screen(
            hot, facts, body, customer_id=customer_id, digest=digest, now=now,
            token=admission_token or body.admission_token)
    except (NotFound, AdmissionRefused) as refusal:
        return await _first_answer(hot, drop_id=drop_id, reference=reference, fp=fp,
                                   path=path, facts=facts, refusal=refusal)
    try:  # before the gate: an unknown card takes no unit
        card = await hot.card(body.payment_method)
    except UnknownPaymentMethod as refusal:
        return await _first_answer(hot, drop_id=drop_id, reference=reference, fp=fp,
                                   path=path, facts=facts, refusal=refusal)
    lead_ms = 0
    if facts.queue_enabled:
        lead_ms = 7 * 24 * 3600 * 1000  # the token proves the shopper's own opening time
    elif now < facts.starts_at and facts.early_access_minutes:
        def lead() -> int:
            with hot.db.transaction() as session:
                return early_access(session, customer_id=customer_id, at=now)
        lead_ms = min(await anyio.to_thread.run_sync(lead),
                      facts.early_access_minutes) * 60_000
    now_ms = int(now.timestamp() * 1000)
    request = gates.TakeRequest(
        drop_id=drop_id, customer_id=customer_id, quantities=quantities,
        now_ms=now_ms, reference=reference, fingerprint=fp,
        token_n=token_n, lead_ms=lead_ms, identity_limit=hot.limits.identity_per_minute,
        ip=ip, ip_limit=hot.limits.ip_per_minute,
        lease_member=gates.lease_member(reference, secrets.token_hex(6)),
        lease_expires_ms=now_ms + hot.limits.lease_seconds * 1000)
    verdict = await _take(hot, request)
    if verdict.outcome == "replay":
        stored = gates.stored_outcome(verdict.values[0])
        if stored is not None:
            return _replayed(stored, facts, path)
        lease_left = int(float(verdict.values[1]) - now_ms) if verdict.values[1] else 0
        try:
            return _replayed(await _await_stored(hot, drop_id, reference,
                                                 lease_left_ms=lease_left), facts, path)
        except RequestInFlight:
            # Still pending: the first attempt may have died. PostgreSQL knows whether its
            # order was written: answer from it. If not, once the first attempt's lease has
            # lapsed the gate gives its units and admission back and this attempt starts
            # afresh (the order's unique checkout reference still makes it one order).
            if await hot.order_lookups.submit(reference):
                return await _answer_existing(hot, drop_id=drop_id, reference=reference,
                                              fp=fp, path=path, card=card,
                                              owner=KeyOfOrder(principal, key))
            request = _renewed(request, hot.clock.now(), hot.limits.lease_seconds)
            verdict = await _take(hot, request)
            if verdict.outcome == "replay":
                stored = gates.stored_outcome(verdict.values[0])
                if stored is not None:
                    return _replayed(stored, facts, path)
                if not verdict.values[1]:
                    # Pending without a lease (a record older than leases): forgotten, so
                    # the next retry starts afresh.
                    await hot.gate.forget(drop_id, reference)
                    raise
                left_ms = float(verdict.values[1]) - request.now_ms
                raise _in_flight(max(1, math.ceil(left_ms / 1000))) from None
    if verdict.outcome != "ok":
        if verdict.outcome in ("limit", "soldout", "token_used", "ended") \
                and await hot.order_lookups.submit(reference):
            # Redis forgot this key (flushed, lost) but PostgreSQL has its order: a replay.
            return await _answer_existing(hot, drop_id=drop_id, reference=reference, fp=fp,
                                          path=path, card=card, owner=KeyOfOrder(principal, key))
        raise _refusal(verdict, facts)

    lease = request.lease_member
    job = Job(drop_id=drop_id, customer_id=customer_id, lines=sorted(lines.items()),
              pools=quantities, card=card, shipping_address=body.shipping_address.model_dump(),
              reference=reference, token_n=token_n, fingerprint=fp, idempotency_key=key,
              source=HoldSource.queue if facts.queue_enabled else HoldSource.direct,
              lease=lease, discount_code=body.discount_code.strip())
    stop_at(AFTER_TAKE, hot.settings.testing.failpoint)
    try:
        await hot.writer.submit(job)
    except Exception:  # noqa: BLE001 - answered as 503 below
        # The units stay taken if step 1 committed (the order exists); otherwise they go
        # back. Either way the key is forgotten, so the client's retry (same key) runs again
        # and resumes from PostgreSQL.
        await hot.gate.end_leases(drop_id, "keep" if job.order_id else "release", [lease],
                                  forget=reference)
        raise ServiceUnavailable("the order could not be written; nothing was charged twice. "
                                 "Retry with the same Idempotency-Key", retry_after=1) from None
    kind, detail = job.outcome or ("refused", "soldout")
    if kind == "paid":
        return 201, job.response, False  # stored in Redis by the batch, with the others
    if kind == "declined":
        # The writer kept the lease once the order was written (this settles it only if
        # that failed); the units then come back as a declined order's do.
        await hot.gate.end_leases(drop_id, "keep", [lease])
        await hot.gate.give_back(drop_id, customer_id=customer_id, quantities=quantities)
        error = PaymentDeclined(f"the card was declined ({detail['decline_code']}); nothing "
                                "was charged", **detail)
        await hot.gate.complete(drop_id, reference=reference, fingerprint=fp, status=402,
                                body=jsonable_encoder(error.to_problem(path)))
        raise error
    if kind == "requires_action":
        # The bank wants the shopper (3-D Secure): the order keeps its units until the
        # provider reports; the key is forgotten, so a retry is answered from the order.
        await hot.gate.end_leases(drop_id, "keep", [lease], forget=reference)
        raise PaymentRequiresAction("your bank asks you to confirm this payment; nothing is "
                                    "charged until you do", **detail)
    if (kind, detail) == ("refused", "soldout"):
        # PostgreSQL had fewer units than Redis believed (units held through the database
        # path, or a stale Redis): giving these back would keep Redis too high, so the drop's
        # keys are rebuilt from PostgreSQL instead (at most once a second per worker).
        await hot.gate.end_leases(drop_id, "drop", [lease])
        refusal = await _store_refusal(hot, drop_id=drop_id, reference=reference, fp=fp,
                                       path=path, refusal=_refused("soldout", facts))
        await anyio.to_thread.run_sync(hot.resync, drop_id)
        raise refusal
    if kind == "existing":
        await hot.gate.end_leases(drop_id, "return", [lease], forget=reference)
        return await _answer_existing(hot, drop_id=drop_id, reference=reference, fp=fp,
                                      path=path, card=card, owner=KeyOfOrder(principal, key))
    await hot.gate.end_leases(drop_id, "return", [lease])
    raise await _store_refusal(hot, drop_id=drop_id, reference=reference, fp=fp, path=path,
                               refusal=_refused(detail if isinstance(detail, DomainError)
                                                else str(detail), facts))


async def _take(hot: HotPath, request: gates.TakeRequest) -> gates.Verdict:
    """The gate's verdict; a drop whose keys are missing is loaded first."""
    verdict = await hot.takes.submit(request)
    if verdict.outcome == "missing":
        await hot.loaded(request.drop_id)
        verdict = await hot.takes.submit(request)
    hot.counters.decided(verdict.outcome)
    return verdict


def _renewed(request: gates.TakeRequest, now: datetime, lease_seconds: int
             ) -> gates.TakeRequest:
    """The same take asked again at ``now``, with a lease from then."""
    now_ms = int(now.timestamp() * 1000)
    return replace(request, now_ms=now_ms, lease_expires_ms=now_ms + lease_seconds * 1000)


async def respond(hot: HotPath, *, drop_id: int, body: PurchaseCreate, path: str,
                  session_token: str | None, idempotency_key: str | None, ip: str,
                  early_access: service.EarlyAccess,
                  admission_token: str | None = None) -> Response:
    """``purchase`` as an HTTP response: the JSON text sent as it is (encoded once, shared
    with the Redis record), refusals as problem+json, a silent gate as 503. Used by the
    FastAPI route and by the fast lane (``drops.crowd.lane``) alike."""
    try:
        status_code, text, replayed = await purchase(
            hot, drop_id=drop_id, body=body, path=path, session_token=session_token,
            idempotency_key=idempotency_key, ip=ip, early_access=early_access,
            admission_token=admission_token)
    except RedisError:
        hot.counters.refused("gate-unavailable")
        return problem_json(ServiceUnavailable(
            "the drop's gate is not answering; retry with the same Idempotency-Key in a "
            "moment", retry_after=2), path)
    except DomainError as exc:
        hot.counters.refused(exc.slug)
        return problem_json(exc, path)
    if replayed:
        hot.counters.replayed += 1
    elif status_code == 201:
        hot.counters.paid += 1
    return EncodedJSON(text, status_code, PROBLEM_JSON if status_code >= 400
                       else "application/json",
                       headers={"Idempotent-Replayed": "true"} if replayed else None)


def problem_json(exc: DomainError, path: str) -> EncodedJSON:
    """A refusal as ``web.problems.domain_error_response`` answers it, encoded by
    pydantic-core (FastAPI's ``jsonable_encoder`` walks the body in Python: a sell-out answers
    thousands of these)."""
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
