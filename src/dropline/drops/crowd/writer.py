"""Batched order writes for the engine's purchases: many orders per PostgreSQL transaction.

Each purchase the Redis gate (``drops.crowd.gate``) let through becomes a ``Job``; the worker's
writer (a ``Coalescer`` in ``drops.crowd.worker_state``) collects the jobs that arrive while the
previous batch is being written and hands them to ``write_batch``, which runs the same three
steps as ``orders.flows`` (write pending, charge outside any transaction, settle), once per
batch instead of once per order:

    1. one transaction: the per-person counts (one guarded upsert), the admission tokens used
       (one guarded UPDATE), the units (the drop's slot rows locked in slot order, decremented
       by arithmetic, never below zero), then orders, lines, payments, drop holds (converted)
       and ``order.created`` events with their webhook deliveries, each one multi-row INSERT;
    2. the charges, through ``PaymentProvider.charge_many`` (one ledger write for the local
       provider; for Stripe one PaymentIntent per order, a bounded number in flight), outside
       the shop's transaction as a real card network would be, each with its payment's key;
    3. one transaction: payments and orders settled, declined orders' units given back,
       ``order.paid`` / ``order.payment_failed`` events. A charge still undecided (3-D Secure)
       leaves its order pending with its units held, and the provider's reference noted, until
       the provider reports its outcome.

Only then does each request get its answer, so nothing acknowledged is lost by a crash; a crash
between steps leaves pending orders that a retry (same Idempotency-Key, so the same checkout
reference) resumes from PostgreSQL, as ``orders.flows`` does, and a crash between the charges
and the settle is settled by the recovery job (``orders.jobs``) even without a retry. Right
after step 1 commits, the gate keeps the written jobs' leases (``on_written``). The unique checkout reference makes
each paid order exist once under any replay: a job whose reference already has an order is
answered from that order and its gate units are given back.

The orders themselves (rows, payments, audit rows) are written and settled by ``orders.bulk``
(and ``payments.bulk``), their events by ``webhooks.bulk``, their confirmation mails by
``notifications.bulk``; this module holds what is the
drop's: the guards, the slot rows, the holds and the three steps.

PostgreSQL is the source of truth: the guarded statements refuse what the rows cannot give, so
whatever the gate admitted, nothing is oversold. A refused job is answered sold out (or limit
reached / token used) and the caller corrects Redis.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from dropline import bulk
from dropline.catalog.models import Product, ProductFamily, ProductStatus, Variant
from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.discounts import service as discounts
from dropline.discounts.errors import DiscountCustomerCapReached
from dropline.drops import codes, service
from dropline.drops.flows import in_transaction
from dropline.drops.models import Drop, DropHold, HoldSource, HoldStatus
from dropline.errors import DomainError
from dropline.failpoints import AFTER_CHARGE, stop_at
from dropline.idempotency.models import KeyState
from dropline.notifications.bulk import queue_event_mails
from dropline.orders.bulk import BulkOrder, insert_orders, settle_orders
from dropline.payments.charging import note_awaiting_payment
from dropline.payments.provider import ChargeRequest, PaymentProvider, charge_each
from dropline.webhooks.bulk import record_events

log = logging.getLogger("dropline.drops")


@dataclass(kw_only=True)
class Job(BulkOrder):
    """One engine purchase waiting to be written (an order, ``orders.bulk.BulkOrder``, and what
    the drop needs besides). ``outcome`` is set by ``write_batch``: ("paid", body) |
    ("declined", problem fields) | ("requires_action", order id and client secret: the
    order and its units held until the provider decides) | ("refused", reason) |
    ("existing", order id or None)."""

    drop_id: int
    pools: dict[int, int]  # pool -> units (what the gate took)
    token_n: int = 0
    source: HoldSource = HoldSource.queue
    fingerprint: str = ""  # the request's, for its idempotency records (Redis, PostgreSQL)
    idempotency_key: str = ""  # the client's Idempotency-Key
    response: str = ""  # the paid order as JSON text, once (stored in Redis, sent as is)
    lease: str = ""  # the gate's lease on the units taken (``gate.lease_member``)


_rng = random.SystemRandom()


class Shortfall(Exception):
    """The slot rows had fewer units than the batch's jobs wanted (the gate admitted too many,
    or expired holds still await reclaiming)."""


def _catalog(session: Session, variant_ids: set[int]) -> dict[int, tuple[Any, ...]]:
    return {v.id: (v, p, f) for v, p, f in session.execute(
        select(Variant, Product, ProductFamily)
        .join(Product, Product.id == Variant.product_id)
        .join(ProductFamily, ProductFamily.id == Product.family_id)
        .where(Variant.id.in_(variant_ids)))}


def _guard_buyers(session: Session, drop: Drop, jobs: list[Job]) -> set[int]:
    """Raises each buyer's count by their jobs' units only where it stays within the limit;
    returns the customers refused. One statement for the whole batch."""
    per_customer: dict[int, int] = defaultdict(int)
    for job in jobs:
        per_customer[job.customer_id] += job.quantity
    customers = sorted(per_customer)
    accepted = {row[0] for row in bulk.execute(
        session,
        "INSERT INTO drop_buyers (drop_id, customer_id, units, holding) "
        "SELECT %b, u.c, u.n, false FROM unnest(%b::bigint[], %b::integer[]) AS u(c, n) "
        "ON CONFLICT (drop_id, customer_id) DO UPDATE SET units = drop_buyers.units + "
        "excluded.units WHERE drop_buyers.units + excluded.units <= %b "
        "RETURNING customer_id",
        (drop.id, customers, [per_customer[c] for c in customers], drop.per_person_limit))}
    return set(per_customer) - accepted


def _guard_tokens(session: Session, drop: Drop, jobs: list[Job]) -> set[int]:
    """Marks admission tokens used in PostgreSQL too (``tokens_used < n``), so a token replayed
    after a Redis loss is still refused. Returns customers whose token was already used."""
    wanted: dict[int, list[int]] = defaultdict(list)
    for job in jobs:
        if job.token_n:
            wanted[job.customer_id].append(job.token_n)
    if not wanted:
        return set()
    customers = sorted(wanted)
    accepted = {row[0] for row in bulk.execute(
        session,
        "UPDATE drop_queue_entries AS q SET tokens_used = v.hi FROM unnest(%b::bigint[], "
        "%b::integer[], %b::integer[]) AS v(c, lo, hi) WHERE q.drop_id = %b "
        "AND q.customer_id = v.c AND q.tokens_used < v.lo AND q.tokens_issued >= v.hi "
        "RETURNING q.customer_id",
        (customers, [min(wanted[c]) for c in customers], [max(wanted[c]) for c in customers],
         drop.id))}
    return set(wanted) - accepted


def _take_slots(session: Session, drop: Drop, jobs: list[Job]) -> list[list[int]]:
    """Takes every job's units from the slot rows; returns each job's takes
    [[pool, slot, qty]]. Raises Shortfall if the rows have too few."""
    wanted: dict[int, int] = defaultdict(int)
    for job in jobs:
        for pool, q in job.pools.items():
            wanted[pool] += q
    remaining = _lock_slots(session, drop, wanted)
    takes: list[list[int]] = []
    decrements: dict[tuple[int, int], int] = defaultdict(int)
    for job in jobs:
        job_takes = []
        for pool, q in sorted(job.pools.items()):
            for entry in remaining[pool]:
                if q == 0:
                    break
                part = min(q, entry[1])
                if part:
                    entry[1] -= part
                    q -= part
                    decrements[(pool, entry[0])] += part
                    job_takes.append([pool, entry[0], part])
        takes.append(job_takes)
    session.execute(text(
        "UPDATE drop_slots SET remaining = remaining - :q WHERE drop_id = :d AND pool = :p "
        "AND slot_no = :s AND remaining >= :q"),
        [{"d": drop.id, "p": p, "s": s, "q": q} for (p, s), q in sorted(decrements.items())])
    return takes


def _lock_slots(session: Session, drop: Drop, wanted: dict[int, int]
                ) -> dict[int, list[list[int]]]:
    """Locks, per pool, slot rows holding at least ``wanted[pool]`` units: [[slot, left]].

    First without waiting: ``SKIP LOCKED``, a few rows at a time from a random place, so
    concurrent batches (two per worker) lock different rows and never wait on each other. Only
    when the unlocked rows are too few (the drop's last units) does a batch wait, and then it
    first gives back the rows it grabbed (a savepoint rolled back releases them) and waits for
    all the rows in (pool, slot) order: two batches that both came up short would otherwise
    each hold rows the other waits for, a deadlock PostgreSQL breaks only after
    ``deadlock_timeout`` (1 s) by aborting one. Raises Shortfall if even all rows are too few.
    """
    savepoint = session.begin_nested()
    got: dict[int, list[list[int]]] = {}
    for pool in sorted(wanted):
        rows = _lock_free_slots(session, drop, pool, wanted[pool])
        if rows is None:
            break
        got[pool] = rows
    else:
        savepoint.commit()  # the savepoint is released; its row locks stay with the batch
        return got
    savepoint.rollback()
    for pool in sorted(wanted):
        got[pool] = [[slot, left] for slot, left in session.execute(text(
            "SELECT slot_no, remaining FROM drop_slots WHERE drop_id = :d AND pool = :p "
            "AND remaining > 0 ORDER BY slot_no FOR UPDATE"), {"d": drop.id, "p": pool})]
        if sum(left for _, left in got[pool]) < wanted[pool]:
            raise Shortfall(pool)
    return got


def _lock_free_slots(session: Session, drop: Drop, pool: int, need: int
                     ) -> list[list[int]] | None:
    """Unlocked slot rows of ``pool`` holding at least ``need`` units, locked; None if the
    unlocked rows hold too few."""
    got: list[list[int]] = []
    total = 0
    start = _rng.randrange(drop.slot_count)
    while total < need:
        rows = session.execute(text(
            "SELECT slot_no, remaining FROM drop_slots WHERE drop_id = :d AND pool = :p "
            "AND remaining > 0 AND NOT (slot_no = ANY(:seen)) "
            "ORDER BY (slot_no + :start) % :n LIMIT 4 FOR UPDATE SKIP LOCKED"),
            {"d": drop.id, "p": pool, "seen": [slot for slot, _ in got], "start": start,
             "n": drop.slot_count}).all()
        if not rows:
            return None
        got.extend([slot, left] for slot, left in rows)
        total += sum(left for _, left in rows)
    return got


def _give_back_slots(session: Session, drop: Drop, takes: Sequence[list[int]]) -> None:
    back: dict[tuple[int, int], int] = defaultdict(int)
    for pool, slot, q in takes:
        back[(pool, slot)] += q
    if back:
        session.execute(text(
            "UPDATE drop_slots SET remaining = remaining + :q WHERE drop_id = :d AND pool = :p "
            "AND slot_no = :s"),
            [{"d": drop.id, "p": p, "s": s, "q": q} for (p, s), q in sorted(back.items())])


def _write_pending(session: Session, *, clock: Clock, settings: Settings, drop: Drop,
                   jobs: list[Job]) -> tuple[list[Job], dict[int, Any]]:
    """Step 1. Returns the jobs written (others have their outcome set) and the customers."""
    now = clock.now()
    existing = dict(bulk.execute(
        session, "SELECT checkout_reference, id FROM orders WHERE checkout_reference = ANY(%s)",
        ([j.reference for j in jobs],)))
    fresh, seen = [], set()
    for job in jobs:
        if job.reference in existing or job.reference in seen:
            job.outcome = ("existing", existing.get(job.reference))
        else:
            seen.add(job.reference)
            fresh.append(job)
    if not fresh:
        return [], {}
    if now >= drop.ends_at:
        for job in fresh:
            job.outcome = ("refused", "ended")
        return [], {}
    catalog = _catalog(session, {v for job in fresh for v, _ in job.lines})
    for job in fresh:
        if any(not catalog[v][0].active or catalog[v][1].status is not ProductStatus.active
               for v, _ in job.lines):
            job.outcome = ("refused", "unavailable")
    live = [j for j in fresh if j.outcome is None]
    # Lock order as in drops.service: buyer counters (by customer), then slot rows.
    refused = _guard_buyers(session, drop, live) if live else set()
    for job in live:
        if job.customer_id in refused:
            job.outcome = ("refused", "limit")
    counted = [j for j in live if j.outcome is None]  # their buyer counts are raised
    used = _guard_tokens(session, drop, counted)
    for job in counted:
        if job.customer_id in used:
            job.outcome = ("refused", "token_used")
    # Discount codes after the buyer counters and before the slot rows, the lock order of
    # the database path (``drops.flows``).
    _take_codes(session, now=now, settings=settings, drop=drop, catalog=catalog,
                jobs=[j for j in counted if j.outcome is None and j.discount_code])
    undone = [j for j in counted if j.outcome is not None]
    if undone:  # refused after their counts were raised above: lower them again
        session.execute(text("UPDATE drop_buyers SET units = units - :u WHERE drop_id = :d "
                             "AND customer_id = :c"),
                        [{"d": drop.id, "c": j.customer_id, "u": j.quantity} for j in undone])
    live = [j for j in counted if j.outcome is None]
    if not live:
        return [], {}
    customers, created = insert_orders(session, now=now, settings=settings, catalog=catalog,
                                       location_id=drop.location_id, orders=live)
    record_events(session, now=now, events=created)
    _record_keys(session, now=now, jobs=live)
    # The units last: slot rows stay locked only from here to the commit.
    takes = _take_slots(session, drop, live)
    bulk.insert_unnest(session, "drop_holds", [
        ("drop_id", "bigint"), ("customer_id", "bigint"), ("status", "text"),
        ("source", "text"), ("quantity", "integer"), ("lines", "json"), ("takes", "json"),
        ("created_at", "timestamptz"), ("expires_at", "timestamptz"),
        ("closed_at", "timestamptz"), ("order_id", "bigint")], [
        (drop.id, j.customer_id, HoldStatus.converted.name, j.source.name, j.quantity,
         [{"variant_id": v, "quantity": q} for v, q in j.lines], t, now,
         now + timedelta(seconds=drop.hold_ttl_seconds), now, j.order_id)
        for j, t in zip(live, takes, strict=True)])
    events: list[dict[str, Any]] = []
    if now < drop.starts_at:
        events += [{"type": "drop.early_access_used", "subject_type": "drop",
                    "subject_id": str(drop.id), "customer_id": j.customer_id,
                    "payload": {"drop_id": drop.id, "order_id": j.order_id,
                                "quantity": j.quantity}} for j in live]
    record_events(session, now=now, events=events)
    return live, customers


def _take_codes(session: Session, *, now: datetime, settings: Settings, drop: Drop,
                catalog: dict[int, tuple[Any, ...]], jobs: list[Job]) -> None:
    """Prices each coded job by the drop's code rules (``drops.codes``) and takes one use of
    its code (one conditional UPDATE, in a savepoint so a per-customer refusal undoes it); a
    refusal becomes the job's outcome, the code's own error, which the caller answers as
    is. A customer's jobs in one batch count against the per-customer cap together, as the
    redemptions they will write."""
    for job in jobs:
        try:
            code, applied = codes.price_drop_code(
                session, code=job.discount_code, drop_id=drop.id,
                customer_id=job.customer_id, currency=settings.shop.currency, at=now,
                lines=[(*catalog[v], q) for v, q in job.lines])
            with session.begin_nested():
                discounts.take_use(session, discount_id=code.id, customer_id=job.customer_id)
                same = [j for j in jobs if j.discount_id == code.id
                        and j.customer_id == job.customer_id]
                if code.max_uses_per_customer is not None and discounts.customer_uses(
                        session, discount_id=code.id, customer_id=job.customer_id
                ) + len(same) >= code.max_uses_per_customer:
                    raise DiscountCustomerCapReached(
                        f"you have used the code {code.code} {code.max_uses_per_customer} "
                        "time(s), as often as it allows", field="discount_code")
        except DomainError as refusal:
            job.outcome = ("refused", refusal)
            continue
        job.discount_id, job.discount_code = code.id, code.code
        job.line_discounts = {v: off for (v, _), off
                              in zip(job.lines, applied.line_discounts, strict=True) if off}
        job.free_delivery = applied.free_delivery


def _record_keys(session: Session, *, now: datetime, jobs: list[Job]) -> None:
    """Each order's Idempotency-Key with its request's fingerprint, in the order's own
    transaction, as the database path records it: after a Redis loss a replay is matched
    against the first request's fingerprint, never bound to a new body. In flight, as a record
    whose request is still running would be: the order itself is the answer, and the database
    path, should it see the key, resumes that order by its checkout reference. One statement
    per batch."""
    keyed = [j for j in jobs if j.idempotency_key]
    bulk.insert_unnest(session, "idempotency_records", [
        ("principal", "text"), ("key", "text"), ("fingerprint", "text"), ("state", "text"),
        ("locked_at", "timestamptz"), ("created_at", "timestamptz")], [
        (f"customer:{j.customer_id}", j.idempotency_key, j.fingerprint, KeyState.in_flight.name,
         now, now) for j in keyed], suffix="ON CONFLICT (principal, key) DO NOTHING")


def _return_drop_units(session: Session, drop: Drop, declined: list[Job]) -> None:
    """Declined drop orders: their holds become payment-failed, units go back to the slot
    rows and the buyers' counts come down (what ``service.return_units_of_order`` does)."""
    takes = session.execute(update(DropHold).where(
        DropHold.order_id.in_([j.order_id for j in declined]),
        DropHold.status == HoldStatus.converted)
        .values(status=HoldStatus.payment_failed).returning(DropHold.takes)).scalars().all()
    _give_back_slots(session, drop, [t for ts in takes for t in ts])
    session.execute(text("UPDATE drop_buyers SET units = units - :u WHERE drop_id = :d "
                         "AND customer_id = :c"),
                    [{"d": drop.id, "c": j.customer_id, "u": j.quantity} for j in declined])
    for job in declined:  # their codes' uses go back (rare: only coded orders have one)
        if job.discount_id is not None:
            discounts.release(session, order_id=job.order_id)


def _write_all(session: Session, *, clock: Clock, settings: Settings, drop_id: int,
               jobs: list[Job]) -> tuple[list[Job], dict[int, Any], Drop]:
    for job in jobs:  # a retried transaction starts from scratch
        job.outcome = None
        job.discount_id, job.line_discounts, job.free_delivery = None, {}, False
    drop = service.get_drop(session, drop_id)
    written, customers = _write_pending(session, clock=clock, settings=settings, drop=drop,
                                        jobs=jobs)
    return written, customers, drop


def write_batch(db: Database, *, clock: Clock, settings: Settings, provider: PaymentProvider,
                jobs: list[Job], on_written: Callable[[list[Job]], None] | None = None
                ) -> list[Job]:
    """Writes, charges and settles a batch of one drop's jobs (see the module docstring); sets
    each job's ``outcome``. Blocking: the web layer runs it in a worker thread.
    ``on_written`` is called with the jobs whose orders step 1 committed, before they are
    charged: the gate keeps their leases then, so units whose order exists are never
    reclaimed, however long the charge takes."""
    drop_id = jobs[0].drop_id
    assert all(j.drop_id == drop_id for j in jobs)
    for attempt in range(2):
        try:
            written, customers, drop = in_transaction(db, lambda session: _write_all(
                session, clock=clock, settings=settings, drop_id=drop_id, jobs=jobs))
            break
        except Shortfall:
            for job in jobs:
                job.outcome = None
            if attempt == 0:  # expired holds may be waiting: reclaim them, then try once more
                # (a deadlock victim among concurrent reclaims is retried, as the writes are)
                in_transaction(db, lambda session: service.reclaim_and_offer(
                    session, clock=clock, drop=service.get_drop(session, drop_id)))
                continue
            if len(jobs) == 1:
                jobs[0].outcome = ("refused", "soldout")
                return jobs
            # Serve as many as the rows can, one by one (only near the very end of a drop).
            log.warning("drop %d: the slot rows have fewer units than a batch of %d needs; "
                        "writing its orders one by one", drop_id, len(jobs))
            for job in jobs:
                write_batch(db, clock=clock, settings=settings, provider=provider, jobs=[job],
                            on_written=on_written)
            return jobs
    if written and on_written is not None:
        on_written(written)
    if written:
        charge_many = getattr(provider, "charge_many", None) or (
            lambda requests: charge_each(provider, requests))
        results = charge_many([ChargeRequest(
            amount=j.totals.total_amount, currency=j.totals.currency, card=j.card,
            idempotency_key=j.payment_key) for j in written])
        stop_at(AFTER_CHARGE, settings.testing.failpoint)
        decided = [(j, r) for j, r in zip(written, results, strict=True)
                   if r.status != "requires_action"]
        with db.transaction() as session:
            now = clock.now()
            if decided:
                settled = settle_orders(
                    session, now=now, provider_name=provider.name,
                    orders=[j for j, _ in decided], results=[r for _, r in decided],
                    customers=customers,
                    on_declined=lambda declined: _return_drop_units(session, drop, declined))
                # The paid orders' confirmation mails, with the events they refer to.
                queue_event_mails(session, now=now, events=settled)
                record_events(session, now=now, events=settled)
            for job, result in zip(written, results, strict=True):
                if result.status == "requires_action":
                    # Undecided (3-D Secure): the order stays pending and holds its units
                    # until the provider reports (webhook, the shopper's return, recovery).
                    note_awaiting_payment(session, at=now, payment_id=job.payment_id,
                                          provider_name=provider.name,
                                          reference=result.reference)
                    job.outcome = ("requires_action", {"order_id": job.order_id,
                                                       "client_secret": result.client_secret})
    return jobs
