"""Batched order writes for gated drop purchases: many orders per PostgreSQL transaction.

Each purchase the Redis gate (``drops.gate``) let through becomes a ``Job``; a per-worker
``BatchWriter`` collects the jobs that arrive while the previous batch is being written and
hands them to ``write_batch``, which runs the same three steps as ``orders.flows`` (write
pending, charge outside any transaction, settle), once per batch instead of once per order:

    1. one transaction: the per-person counts (one guarded upsert), the admission tokens used
       (one guarded UPDATE), the units (the drop's slot rows locked in slot order, decremented
       by arithmetic, never below zero), then orders, lines, payments, drop holds (converted)
       and ``order.created`` events with their webhook deliveries, each one multi-row INSERT;
    2. the charges, through ``PaymentProvider.charge_many`` (one ledger write for the local
       provider), outside the shop's transaction as a real card network would be;
    3. one transaction: payments and orders settled, declined orders' units given back,
       ``order.paid`` / ``order.payment_failed`` events.

Only then does each request get its answer, so nothing acknowledged is lost by a crash; a crash
between steps leaves pending orders that a retry (same Idempotency-Key, so the same checkout
reference) resumes from PostgreSQL, as ``orders.flows`` does. The unique checkout reference makes
each paid order exist once under any replay: a job whose reference already has an order is
answered from that order and its gate units are given back.

PostgreSQL is the source of truth: the guarded statements refuse what the rows cannot give, so
whatever the gate admitted, nothing is oversold. A refused job is answered sold out (or limit
reached / token used) and the caller corrects Redis.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, NamedTuple

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from dropline import bulk
from dropline.adapters.payments import (
    Card,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    charge_each,
)
from dropline.catalog.models import Product, ProductFamily, ProductStatus, Variant
from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.drops import service
from dropline.drops.flows import in_transaction
from dropline.drops.models import Drop, DropHold, HoldSource, HoldStatus
from dropline.orders.models import Order, OrderStatus
from dropline.orders.rules import PricedLine, order_event_payload, order_totals
from dropline.payments.models import Payment, PaymentStatus
from dropline.risk import audit
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from dropline.webhooks.service import subscribes_to

log = logging.getLogger("dropline.drops")


@dataclass
class Job:
    """One gated purchase waiting to be written. ``outcome`` is set by ``write_batch``:
    ("paid", body) | ("declined", problem fields) | ("refused", reason) | ("existing", ...)."""

    drop_id: int
    customer_id: int
    lines: list[tuple[int, int]]  # (variant_id, quantity), sorted by variant
    pools: dict[int, int]  # pool -> units (what the gate took)
    card: Card
    shipping_address: dict[str, Any]
    reference: str
    token_n: int = 0
    source: HoldSource = HoldSource.queue
    fingerprint: str = ""  # the request's, for its idempotency record in Redis
    outcome: tuple[str, Any] | None = None
    response: str = ""  # the paid order as JSON text, once (stored in Redis, sent as is)
    # filled while writing
    order_id: int = 0
    payment_id: int = 0
    payment_key: str = ""
    totals: Any = None
    drafted: list[dict[str, Any]] = field(default_factory=list)
    written_at: datetime | None = None  # when its pending order and payment were written

    @property
    def quantity(self) -> int:
        return sum(q for _, q in self.lines)


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


def _insert_dicts(session: Session, table: str, columns: Sequence[tuple[str, str]],
                  rows: list[dict[str, Any]]) -> None:
    """``bulk.insert_unnest`` of dict rows; enum members are stored by name, as the ORM does."""
    bulk.insert_unnest(session, table, columns, [
        tuple(v.name if isinstance(v := row[name], Enum) else v for name, _ in columns)
        for row in rows])


def _next_ids(session: Session, tables: Sequence[str], n: int) -> list[tuple[int, ...]]:
    """n ids from each table's sequence in one round trip, so rows can be written without
    RETURNING and children can refer to them in the same batch."""
    nextvals = ", ".join(f"nextval(pg_get_serial_sequence('{t}', 'id'))" for t in tables)
    return [tuple(row) for row in session.execute(text(
        f"SELECT {nextvals} FROM generate_series(1, :n)"), {"n": n})]


class Buyer(NamedTuple):
    """The customer fields an order copies (read as plain rows, not ORM objects)."""

    id: int
    email: str
    acquisition_source: str
    acquisition_campaign: str


def _record_events(session: Session, *, now: datetime, events: list[dict[str, Any]]) -> None:
    """``events.record_event`` for many events: one INSERT, then the webhook deliveries of the
    active endpoints that subscribe to them (one read, one INSERT). With no subscriber, the
    events take their ids from the table's default (one round trip fewer)."""
    if not events:
        return
    endpoints = session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.active.is_(True))).all()
    wanted = [endpoint for endpoint in endpoints
              if any(subscribes_to(endpoint, kind) for kind in {e["type"] for e in events})]
    columns = [("event_id", "text"), ("type", "text"), ("subject_type", "text"),
               ("subject_id", "text"), ("customer_id", "bigint"), ("occurred_at", "timestamptz"),
               ("payload", "json")]
    rows = [(str(uuid.uuid4()), e["type"], e["subject_type"], e["subject_id"], e["customer_id"],
             now, e["payload"]) for e in events]
    if not wanted:
        bulk.insert_unnest(session, "domain_events", columns, rows)
        return
    ids = [row[0] for row in _next_ids(session, ["domain_events"], len(events))]
    bulk.insert_unnest(session, "domain_events", [("id", "bigint"), *columns],
                       [(event_id, *row) for event_id, row in zip(ids, rows, strict=True)])
    deliveries = [{"endpoint_id": endpoint.id, "event_id": event_id,
                   "status": DeliveryStatus.pending, "next_attempt_at": now, "attempts": 0}
                  for event_id, e in zip(ids, events, strict=True) for endpoint in wanted
                  if subscribes_to(endpoint, e["type"])]
    if deliveries:
        session.execute(insert(WebhookDelivery), deliveries)


def _payload(job: Job, customer: Any, families: list[str]) -> dict[str, Any]:
    return order_event_payload(
        order_id=job.order_id, total_amount=job.totals.total_amount,
        currency=job.totals.currency, acquisition_source=customer.acquisition_source,
        acquisition_campaign=customer.acquisition_campaign, product_families=families,
        fulfilment_path="central")


def insert_orders(session: Session, *, now: datetime, settings: Settings,
                  catalog: dict[int, tuple[Any, ...]], location_id: int | None,
                  jobs: list[Job]) -> dict[int, Any]:
    """Writes pending orders, their lines and payments, and ``order.created`` events, for
    jobs whose units are taken: one multi-row INSERT per table, the same columns and event
    payloads as ``orders.flows.write_pending_order``. Returns the customers by id. Shared by
    the drop batches and the bench's classic baseline (so both pay the same writing cost)."""
    customers = {row[0]: Buyer(*row) for row in bulk.execute(
        session, "SELECT id, email, acquisition_source, acquisition_campaign FROM customers "
        "WHERE id = ANY(%s)", (sorted({j.customer_id for j in jobs}),))}
    for job in jobs:
        priced = []
        job.drafted = []
        for variant_id, q in job.lines:
            variant, product, family = catalog[variant_id]
            priced.append(PricedLine(variant_id, variant.price_amount, q, variant.currency))
            job.drafted.append({
                "variant_id": variant_id, "sku": variant.sku, "product_name": product.name,
                "variant_name": variant.name, "product_family": family.slug,
                "condition_grade": variant.condition_grade,
                "condition_disclosure": variant.condition_disclosure,
                "unit_price_amount": variant.price_amount, "quantity": q,
                "line_total_amount": variant.price_amount * q})
        job.totals = order_totals(priced, currency=settings.currency,
                                  flat_shipping=settings.flat_shipping_amount,
                                  free_shipping_threshold=settings.free_shipping_threshold)
    for job, (order_id, payment_id) in zip(
            jobs, _next_ids(session, ["orders", "payments"], len(jobs)), strict=True):
        job.order_id, job.payment_id = order_id, payment_id
        job.payment_key = f"pay_{uuid.uuid4().hex}"
    orders = [{
        "id": j.order_id, "customer_id": j.customer_id, "email": customers[j.customer_id].email,
        "status": OrderStatus.pending_payment, "currency": j.totals.currency,
        "subtotal_amount": j.totals.subtotal_amount, "discount_amount": j.totals.discount_amount,
        "shipping_amount": j.totals.shipping_amount, "total_amount": j.totals.total_amount,
        "refunded_amount": 0, "checkout_reference": j.reference, "cart_id": None,
        "location_id": location_id, "fulfilment_path": "central",
        "acquisition_source": customers[j.customer_id].acquisition_source,
        "acquisition_campaign": customers[j.customer_id].acquisition_campaign,
        "shipping_address": j.shipping_address, "created_at": now} for j in jobs]
    _insert_dicts(session, "orders", [
        ("id", "bigint"), ("customer_id", "bigint"), ("email", "text"), ("status", "text"),
        ("currency", "text"), ("subtotal_amount", "bigint"), ("discount_amount", "bigint"),
        ("shipping_amount", "bigint"), ("total_amount", "bigint"),
        ("refunded_amount", "bigint"), ("checkout_reference", "text"), ("cart_id", "text"),
        ("location_id", "bigint"), ("fulfilment_path", "text"), ("acquisition_source", "text"),
        ("acquisition_campaign", "text"), ("shipping_address", "json"),
        ("created_at", "timestamptz")], orders)
    bulk.insert_unnest(session, "order_lines", [
        ("order_id", "bigint"), ("variant_id", "bigint"), ("sku", "text"),
        ("product_name", "text"), ("variant_name", "text"), ("product_family", "text"),
        ("condition_grade", "text"), ("condition_disclosure", "text"),
        ("unit_price_amount", "bigint"), ("quantity", "integer"),
        ("line_total_amount", "bigint")], [
        (j.order_id, d["variant_id"], d["sku"], d["product_name"], d["variant_name"],
         d["product_family"], d["condition_grade"].name, d["condition_disclosure"],
         d["unit_price_amount"], d["quantity"], d["line_total_amount"])
        for j in jobs for d in j.drafted])
    payments = [{
        "id": j.payment_id, "order_id": j.order_id, "provider": "pending",
        "idempotency_key": j.payment_key, "status": PaymentStatus.pending,
        "amount": j.totals.total_amount, "currency": j.totals.currency,
        "card_last4": j.card.last4, "card_fingerprint": j.card.fingerprint,
        "created_at": now, "updated_at": now} for j in jobs]
    _insert_dicts(session, "payments", [
        ("id", "bigint"), ("order_id", "bigint"), ("provider", "text"),
        ("idempotency_key", "text"), ("status", "text"), ("amount", "bigint"),
        ("currency", "text"), ("card_last4", "text"), ("card_fingerprint", "text"),
        ("created_at", "timestamptz"), ("updated_at", "timestamptz")], payments)
    # The audit trail, as the ORM's listeners would have written it (risk.audit).
    for model, rows in ((Order, orders), (Payment, payments)):
        audit.record_bulk(session, model, "create", at=now, entries=[
            (row["id"], f"customer:{j.customer_id}", {k: (None, v) for k, v in row.items()})
            for j, row in zip(jobs, rows, strict=True)])
    for job in jobs:
        job.written_at = now
    _record_events(session, now=now, events=[{
        "type": "order.created", "subject_type": "order", "subject_id": str(j.order_id),
        "customer_id": j.customer_id,
        "payload": _payload(j, customers[j.customer_id],
                            [d["product_family"] for d in j.drafted])}
        for j in jobs])
    return customers


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
    live = [j for j in live if j.outcome is None]
    used = _guard_tokens(session, drop, live)
    for job in live:
        if job.customer_id in used:
            job.outcome = ("refused", "token_used")
    if used:  # their counts were raised above: lower them again
        session.execute(text("UPDATE drop_buyers SET units = units - :u WHERE drop_id = :d "
                             "AND customer_id = :c"),
                        [{"d": drop.id, "c": j.customer_id, "u": j.quantity}
                         for j in jobs if j.outcome == ("refused", "token_used")])
    live = [j for j in live if j.outcome is None]
    if not live:
        return [], {}
    customers = insert_orders(session, now=now, settings=settings, catalog=catalog,
                              location_id=drop.location_id, jobs=live)
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
    _record_events(session, now=now, events=events)
    return live, customers


def settle_orders(session: Session, *, now: datetime, provider_name: str, jobs: list[Job],
                  results: list[ChargeResult], customers: dict[int, Any],
                  on_declined: Callable[[list[Job]], None]) -> None:
    """Step 3, for many orders: payments leave pending only once (guarded), orders become
    paid or payment-failed, ``on_declined`` gives the declined jobs' units back, and the
    ``order.paid`` / ``order.payment_failed`` events are written. Sets each job's outcome."""
    statuses = [PaymentStatus.succeeded if r.status == "succeeded" else PaymentStatus.declined
                for r in results]
    settled = {row[0] for row in bulk.execute(
        session, "UPDATE payments AS p SET status = u.st, provider = %s, provider_ref = u.ref, "
        "decline_code = u.code, updated_at = %s FROM unnest(%b::bigint[], %b::text[], "
        "%b::text[], %b::text[]) AS u(id, st, ref, code) WHERE p.id = u.id "
        "AND p.status = 'pending' RETURNING p.id",
        (provider_name, now, [j.payment_id for j in jobs], [st.name for st in statuses],
         [r.reference for r in results], [r.decline_code for r in results]))}
    paid = [j for j, r in zip(jobs, results, strict=True) if r.status == "succeeded"]
    if paid:
        bulk.execute(session, "UPDATE orders SET status = %s, paid_at = %s WHERE id = ANY(%s)",
                     (OrderStatus.paid.name, now, [j.order_id for j in paid]))
    declined = [j for j, r in zip(jobs, results, strict=True) if r.status != "succeeded"]
    if declined:
        bulk.execute(session, "UPDATE orders SET status = %s WHERE id = ANY(%s)",
                     (OrderStatus.payment_failed.name, [j.order_id for j in declined]))
        on_declined(declined)
    audit.record_bulk(session, Payment, "update", at=now, entries=[
        (j.payment_id, f"customer:{j.customer_id}", {
            "status": (PaymentStatus.pending, st), "provider": ("pending", provider_name),
            "provider_ref": (None, r.reference), "decline_code": (None, r.decline_code),
            "updated_at": (j.written_at, now)})
        for j, r, st in zip(jobs, results, statuses, strict=True) if j.payment_id in settled])
    audit.record_bulk(session, Order, "update", at=now, entries=[
        (j.order_id, f"customer:{j.customer_id}",
         {"status": (OrderStatus.pending_payment, OrderStatus.paid), "paid_at": (None, now)}
         if r.status == "succeeded" else
         {"status": (OrderStatus.pending_payment, OrderStatus.payment_failed)})
        for j, r in zip(jobs, results, strict=True)])
    events = []
    for job, result in zip(jobs, results, strict=True):
        families = [d["product_family"] for d in job.drafted]
        events.append({"type": "order.paid" if result.status == "succeeded"
                       else "order.payment_failed", "subject_type": "order",
                       "subject_id": str(job.order_id), "customer_id": job.customer_id,
                       "payload": {**_payload(job, customers[job.customer_id], families),
                                   "decline_code": result.decline_code}})
        if result.status == "succeeded":
            job.outcome = ("paid", _order_body(job, customers[job.customer_id], now))
        else:
            job.outcome = ("declined", {"decline_code": result.decline_code,
                                        "order_id": job.order_id})
    _record_events(session, now=now, events=events)


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


def _order_body(job: Job, customer: Any, now: datetime) -> dict[str, Any]:
    """The same fields as ``orders.api.OrderRead``, from what the batch already has."""
    t = job.totals
    return {
        "id": job.order_id, "status": OrderStatus.paid.value, "email": customer.email,
        "currency": t.currency, "subtotal_amount": t.subtotal_amount,
        "discount_amount": t.discount_amount, "shipping_amount": t.shipping_amount,
        "total_amount": t.total_amount, "refunded_amount": 0, "fulfilment_path": "central",
        "created_at": now.isoformat(), "paid_at": now.isoformat(),
        "lines": [{**d, "condition_grade": getattr(d["condition_grade"], "value",
                                                   d["condition_grade"])} for d in job.drafted],
        "payments": [{"id": job.payment_id, "status": PaymentStatus.succeeded.value,
                      "amount": t.total_amount, "currency": t.currency,
                      "card_last4": job.card.last4, "decline_code": None}],
        "refunds": []}


def _write_all(session: Session, *, clock: Clock, settings: Settings, drop_id: int,
               jobs: list[Job]) -> tuple[list[Job], dict[int, Any], Drop]:
    for job in jobs:  # a retried transaction starts from scratch
        job.outcome = None
    drop = service.get_drop(session, drop_id)
    written, customers = _write_pending(session, clock=clock, settings=settings, drop=drop,
                                        jobs=jobs)
    return written, customers, drop


def write_batch(db: Database, *, clock: Clock, settings: Settings, provider: PaymentProvider,
                jobs: list[Job]) -> list[Job]:
    """Writes, charges and settles a batch of one drop's jobs (see the module docstring); sets
    each job's ``outcome``. Blocking: the web layer runs it in a worker thread."""
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
                with db.transaction() as session:
                    service.reclaim_and_offer(session, clock=clock,
                                              drop=service.get_drop(session, drop_id))
                continue
            if len(jobs) == 1:
                jobs[0].outcome = ("refused", "soldout")
                return jobs
            # Serve as many as the rows can, one by one (only near the very end of a drop).
            log.warning("drop %d: the slot rows have fewer units than a batch of %d needs; "
                        "writing its orders one by one", drop_id, len(jobs))
            for job in jobs:
                write_batch(db, clock=clock, settings=settings, provider=provider, jobs=[job])
            return jobs
    if written:
        charge_many = getattr(provider, "charge_many", None) or (
            lambda requests: charge_each(provider, requests))
        results = charge_many([ChargeRequest(
            amount=j.totals.total_amount, currency=j.totals.currency, card=j.card,
            idempotency_key=j.payment_key) for j in written])
        with db.transaction() as session:
            settle_orders(session, now=clock.now(), provider_name=provider.name,
                          jobs=written, results=results, customers=customers,
                          on_declined=lambda declined: _return_drop_units(session, drop,
                                                                          declined))
    return jobs
