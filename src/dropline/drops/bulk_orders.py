"""A batch's orders written and settled in bulk (PostgreSQL): the order-writing half of the drop
batch writer (``drops.batch``), also used by the bench's classic baseline so both designs pay
the same cost for the same rows.

``insert_orders`` writes pending orders, their lines and payments, with ``order.created``
events and the audit trail's create rows, one ``INSERT ... SELECT FROM unnest`` per table;
``settle_orders`` moves the payments and orders on from the charges' results and writes
``order.paid`` / ``order.payment_failed`` and the audit rows of the moves. The rows, the event
payloads and the audit rows are those ``orders.flows`` and the ORM's listeners write for one
order at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from dropline import bulk
from dropline.adapters.payments import ChargeResult
from dropline.config import Settings
from dropline.orders.models import Order, OrderStatus
from dropline.orders.rules import PricedLine, order_event_payload, order_totals
from dropline.payments.models import Payment, PaymentStatus
from dropline.risk import audit
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from dropline.webhooks.service import subscribes_to

if TYPE_CHECKING:
    from dropline.drops.batch import Job


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


def record_events(session: Session, *, now: datetime, events: list[dict[str, Any]]) -> None:
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
        job.totals = order_totals(priced, currency=settings.shop.currency,
                                  flat_shipping=settings.shop.flat_shipping_amount,
                                  free_shipping_threshold=settings.shop.free_shipping_threshold)
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
    record_events(session, now=now, events=[{
        "type": "order.created", "subject_type": "order", "subject_id": str(j.order_id),
        "customer_id": j.customer_id,
        "payload": _payload(j, customers[j.customer_id],
                            [d["product_family"] for d in j.drafted])}
        for j in jobs])
    return customers


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
    record_events(session, now=now, events=events)


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
