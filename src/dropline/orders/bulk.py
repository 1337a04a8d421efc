"""Orders written and settled in bulk (PostgreSQL): many orders per statement, for the drop
engine's batch writer (``drops.crowd.writer``) and the bench's classic baseline, so both pay
the same cost for the same rows.

``insert_orders`` writes pending orders, their lines and payments (``payments.bulk``) with the
audit trail's create rows, one ``INSERT ... SELECT FROM unnest`` per table, and returns the
``order.created`` events; ``settle_orders`` moves the payments and orders on from the charges'
results, with the audit rows of the moves, and returns ``order.paid`` /
``order.payment_failed``. The rows, the event payloads and the audit rows are those
``orders.flows`` and the ORM's listeners write for one order at a time. The caller records the
events (``webhooks.bulk.record_events``), in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy.orm import Session

from dropline import audit, bulk
from dropline.config import Settings
from dropline.orders.models import Order, OrderStatus
from dropline.orders.rules import PricedLine, order_event_payload, order_totals
from dropline.pricing import discounted_totals
from dropline.payments.bulk import Settlement, insert_payments, settle_payments
from dropline.payments.models import PaymentStatus
from dropline.payments.provider import CardToken, ChargeResult
from dropline.tax import service as tax
from dropline.tax.rules import TaxBreakdown


@dataclass(kw_only=True)
class BulkOrder:
    """One order to write in a batch; ``insert_orders`` and ``settle_orders`` fill in the rest.
    ``outcome`` once settled: ("paid", the order as ``OrderRead`` fields) or ("declined",
    {"decline_code", "order_id"})."""

    customer_id: int
    lines: list[tuple[int, int]]  # (variant_id, quantity), sorted by variant
    card: CardToken
    shipping_address: dict[str, Any]
    reference: str  # the checkout reference (unique per order)
    outcome: tuple[str, Any] | None = None
    discount_code: str = ""  # as typed; once priced by the caller, the code as stored
    discount_id: int | None = None  # set by the caller once the code's use is taken
    line_discounts: dict[int, int] = field(default_factory=dict)  # variant -> the code's part
    free_delivery: bool = False  # the code makes delivery free
    # filled while writing
    order_id: int = 0
    payment_id: int = 0
    payment_key: str = ""
    totals: Any = None
    tax: TaxBreakdown | None = None  # the order's VAT (``tax.rules``)
    delivery_discount: int = 0  # what a free-delivery code saved
    drafted: list[dict[str, Any]] = field(default_factory=list)
    written_at: datetime | None = None  # when its pending order and payment were written

    @property
    def quantity(self) -> int:
        return sum(q for _, q in self.lines)


O = TypeVar("O", bound=BulkOrder)
Event = dict[str, Any]


class Buyer(NamedTuple):
    """The customer fields an order copies (read as plain rows, not ORM objects)."""

    id: int
    email: str
    acquisition_source: str
    acquisition_campaign: str


def _payload(order: BulkOrder, customer: Buyer, families: list[str]) -> dict[str, Any]:
    return order_event_payload(
        order_id=order.order_id, total_amount=order.totals.total_amount,
        currency=order.totals.currency, acquisition_source=customer.acquisition_source,
        acquisition_campaign=customer.acquisition_campaign, product_families=families,
        fulfilment_path="central")


def insert_orders(session: Session, *, now: datetime, settings: Settings,
                  catalog: dict[int, tuple[Any, ...]], location_id: int | None,
                  orders: Sequence[BulkOrder]) -> tuple[dict[int, Buyer], list[Event]]:
    """Writes pending orders, their lines and payments for orders whose units are taken: one
    multi-row INSERT per table, the same columns as ``orders.flows.write_pending_order``.
    ``catalog``: variant id -> (Variant, Product, ProductFamily). Returns the customers by id
    and the ``order.created`` events to record."""
    customers = {row[0]: Buyer(*row) for row in bulk.execute(
        session, "SELECT id, email, acquisition_source, acquisition_campaign FROM customers "
        "WHERE id = ANY(%s)", (sorted({o.customer_id for o in orders}),))}
    # VAT as checkout records it (``tax.rules``), read once for the batch: a drop's prices
    # are fixed, so its few distinct lines are taxed once and reused across the batch.
    table = tax.tax_table(session, product_ids=[catalog[v][1].id for o in orders
                                                for v, _ in o.lines],
                          prices_include_tax=settings.shop.prices_include_tax)
    on = now.date()
    for order in orders:
        priced = []
        order.drafted = []
        for variant_id, q in order.lines:
            variant, product, family = catalog[variant_id]
            priced.append(PricedLine(variant_id, variant.price_amount, q, variant.currency))
            order.drafted.append({
                "variant_id": variant_id, "sku": variant.sku, "product_name": product.name,
                "variant_name": variant.name, "product_family": family.slug,
                "condition_grade": variant.condition_grade,
                "condition_disclosure": variant.condition_disclosure,
                "unit_price_amount": variant.price_amount, "quantity": q,
                "line_total_amount": variant.price_amount * q, "discount_amount": 0})
        off = order.line_discounts
        if off or order.free_delivery:  # a discount code, priced by the caller
            for drafted in order.drafted:
                drafted["discount_amount"] = off.get(drafted["variant_id"], 0)
            totals, order.delivery_discount = discounted_totals(
                priced, currency=settings.shop.currency,
                flat_shipping=settings.shop.flat_shipping_amount,
                free_shipping_threshold=settings.shop.free_shipping_threshold,
                discount_amount=sum(off.values()), free_delivery=order.free_delivery)
        else:
            totals = order_totals(priced, currency=settings.shop.currency,
                                  flat_shipping=settings.shop.flat_shipping_amount,
                                  free_shipping_threshold=settings.shop.free_shipping_threshold)
        order.tax = table.breakdown(
            lines=[(catalog[v][1].id, catalog[v][0].price_amount * q - off.get(v, 0))
                   for v, q in order.lines],
            shipping_amount=totals.shipping_amount,
            country=str(order.shipping_address.get("country") or settings.shop.country).upper(),
            on=on)
        order.totals = replace(totals, tax_added_amount=order.tax.added_amount)
        for drafted, line_vat in zip(order.drafted, order.tax.lines, strict=True):
            drafted.update(tax_class=line_vat.tax_class.value, tax_rate_bp=line_vat.rate_bp,
                           tax_amount=line_vat.tax_amount)
    for order, (order_id, payment_id) in zip(
            orders, bulk.next_ids(session, ["orders", "payments"], len(orders)), strict=True):
        order.order_id, order.payment_id = order_id, payment_id
        order.payment_key = f"pay_{uuid.uuid4().hex}"
    rows = [{
        "id": o.order_id, "customer_id": o.customer_id, "email": customers[o.customer_id].email,
        "status": OrderStatus.pending_payment, "currency": o.totals.currency,
        "subtotal_amount": o.totals.subtotal_amount, "discount_amount": o.totals.discount_amount,
        "shipping_amount": o.totals.shipping_amount, "total_amount": o.totals.total_amount,
        "tax_amount": o.tax.tax_amount, "tax_added_amount": o.tax.added_amount,
        "shipping_tax_amount": o.tax.shipping.tax_amount,
        "shipping_tax_rate_bp": o.tax.shipping.rate_bp, "tax_country": o.tax.country,
        "refunded_amount": 0, "checkout_reference": o.reference, "cart_id": None,
        "discount_code": o.discount_code if o.discount_id is not None else None,
        "location_id": location_id, "fulfilment_path": "central",
        "acquisition_source": customers[o.customer_id].acquisition_source,
        "acquisition_campaign": customers[o.customer_id].acquisition_campaign,
        "shipping_address": o.shipping_address, "created_at": now} for o in orders]
    bulk.insert_dicts(session, "orders", [
        ("id", "bigint"), ("customer_id", "bigint"), ("email", "text"), ("status", "text"),
        ("currency", "text"), ("subtotal_amount", "bigint"), ("discount_amount", "bigint"),
        ("shipping_amount", "bigint"), ("total_amount", "bigint"), ("tax_amount", "bigint"),
        ("tax_added_amount", "bigint"), ("shipping_tax_amount", "bigint"),
        ("shipping_tax_rate_bp", "integer"), ("tax_country", "text"),
        ("refunded_amount", "bigint"), ("checkout_reference", "text"), ("cart_id", "text"),
        ("discount_code", "text"),
        ("location_id", "bigint"), ("fulfilment_path", "text"), ("acquisition_source", "text"),
        ("acquisition_campaign", "text"), ("shipping_address", "json"),
        ("created_at", "timestamptz")], rows)
    bulk.insert_unnest(session, "order_lines", [
        ("order_id", "bigint"), ("variant_id", "bigint"), ("sku", "text"),
        ("product_name", "text"), ("variant_name", "text"), ("product_family", "text"),
        ("condition_grade", "text"), ("condition_disclosure", "text"),
        ("unit_price_amount", "bigint"), ("quantity", "integer"),
        ("line_total_amount", "bigint"), ("discount_amount", "bigint"), ("tax_class", "text"),
        ("tax_rate_bp", "integer"), ("tax_amount", "bigint")], [
        (o.order_id, d["variant_id"], d["sku"], d["product_name"], d["variant_name"],
         d["product_family"], d["condition_grade"].name, d["condition_disclosure"],
         d["unit_price_amount"], d["quantity"], d["line_total_amount"], d["discount_amount"],
         d["tax_class"], d["tax_rate_bp"], d["tax_amount"])
        for o in orders for d in o.drafted])
    # Each coded order's use of its code (taken by the caller in this transaction).
    bulk.insert_unnest(session, "discount_redemptions", [
        ("discount_id", "bigint"), ("customer_id", "bigint"), ("order_id", "bigint"),
        ("discount_amount", "bigint"), ("delivery_discount_amount", "bigint"),
        ("created_at", "timestamptz")], [
        (o.discount_id, o.customer_id, o.order_id, o.totals.discount_amount,
         o.delivery_discount, now) for o in orders if o.discount_id is not None])
    actors = [f"customer:{o.customer_id}" for o in orders]
    # The audit trail, as the ORM's listeners would have written it (dropline.audit).
    audit.record_bulk(session, Order, "create", at=now, entries=[
        (row["id"], actor, {k: (None, v) for k, v in row.items()})
        for row, actor in zip(rows, actors, strict=True)])
    insert_payments(session, now=now, actors=actors, rows=[{
        "id": o.payment_id, "order_id": o.order_id, "provider": "pending",
        "idempotency_key": o.payment_key, "status": PaymentStatus.pending,
        "amount": o.totals.total_amount, "currency": o.totals.currency,
        "card_last4": o.card.last4, "card_fingerprint": o.card.fingerprint,
        "created_at": now, "updated_at": now} for o in orders])
    for order in orders:
        order.written_at = now
    return customers, [{
        "type": "order.created", "subject_type": "order", "subject_id": str(o.order_id),
        "customer_id": o.customer_id,
        "payload": _payload(o, customers[o.customer_id],
                            [d["product_family"] for d in o.drafted])}
        for o in orders]


def settle_orders(session: Session, *, now: datetime, provider_name: str, orders: list[O],
                  results: list[ChargeResult], customers: dict[int, Buyer],
                  on_declined: Callable[[list[O]], None]) -> list[Event]:
    """Step 3 of a checkout, for many orders: payments leave pending only once (guarded),
    orders become paid or payment-failed, ``on_declined`` gives the declined orders' units
    back. Sets each order's outcome; returns the ``order.paid`` / ``order.payment_failed``
    events to record. An order whose payment another settler (the recovery job, a resumed
    retry) moved first is answered the same but changed, and announced, only once."""
    settled = settle_payments(session, now=now, provider_name=provider_name, settlements=[
        Settlement(o.payment_id, f"customer:{o.customer_id}", r.status == "succeeded",
                   r.reference, r.decline_code, o.written_at)
        for o, r in zip(orders, results, strict=True)])
    answers = list(zip(orders, results, strict=True))
    for order, result in answers:
        if result.status == "succeeded":
            order.outcome = ("paid", _order_body(order, customers[order.customer_id], now))
        else:
            order.outcome = ("declined", {"decline_code": result.decline_code,
                                          "order_id": order.order_id})
    orders = [o for o in orders if o.payment_id in settled]
    results = [r for o, r in answers if o.payment_id in settled]
    paid = [o for o, r in zip(orders, results, strict=True) if r.status == "succeeded"]
    if paid:
        bulk.execute(session, "UPDATE orders SET status = %s, paid_at = %s WHERE id = ANY(%s)",
                     (OrderStatus.paid.name, now, [o.order_id for o in paid]))
    declined = [o for o, r in zip(orders, results, strict=True) if r.status != "succeeded"]
    if declined:
        bulk.execute(session, "UPDATE orders SET status = %s WHERE id = ANY(%s)",
                     (OrderStatus.payment_failed.name, [o.order_id for o in declined]))
        on_declined(declined)
    audit.record_bulk(session, Order, "update", at=now, entries=[
        (o.order_id, f"customer:{o.customer_id}",
         {"status": (OrderStatus.pending_payment, OrderStatus.paid), "paid_at": (None, now)}
         if r.status == "succeeded" else
         {"status": (OrderStatus.pending_payment, OrderStatus.payment_failed)})
        for o, r in zip(orders, results, strict=True)])
    events = []
    for order, result in zip(orders, results, strict=True):
        families = [d["product_family"] for d in order.drafted]
        events.append({"type": "order.paid" if result.status == "succeeded"
                       else "order.payment_failed", "subject_type": "order",
                       "subject_id": str(order.order_id), "customer_id": order.customer_id,
                       "payload": {**_payload(order, customers[order.customer_id], families),
                                   "decline_code": result.decline_code}})
    return events


def _order_body(order: BulkOrder, customer: Buyer, now: datetime) -> dict[str, Any]:
    """The same fields as ``orders.schemas.OrderRead``, from what the batch already has."""
    t = order.totals
    return {
        "id": order.order_id, "status": OrderStatus.paid.value, "email": customer.email,
        "currency": t.currency, "subtotal_amount": t.subtotal_amount,
        "discount_code": order.discount_code if order.discount_id is not None else None,
        "discount_amount": t.discount_amount,
        "shipping_amount": t.shipping_amount, "tax_amount": order.tax.tax_amount,
        "tax_added_amount": order.tax.added_amount,
        "reverse_charge": False, "total_amount": t.total_amount, "refunded_amount": 0, "fulfilment_path": "central",
        "created_at": now.isoformat(), "paid_at": now.isoformat(),
        "lines": [{**d,
                   "condition_grade": getattr(d["condition_grade"], "value",
                                              d["condition_grade"])} for d in order.drafted],
        "payments": [{"id": order.payment_id, "status": PaymentStatus.succeeded.value,
                      "amount": t.total_amount, "currency": t.currency,
                      "card_last4": order.card.last4, "decline_code": None}],
        "refunds": []}
