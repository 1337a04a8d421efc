"""Built-in steps: customers and their paid order history, written in bulk.

Rows go in with one multi-row INSERT per table rather than through ``register_customer`` and
``checkout``: those hash a password per customer (argon2, ~50 ms each) and charge a payment
provider per order, which is right for one shopper and far too slow for a year of history. The
rows hold what the real flows would have written; the events carry the same payloads as
``orders.flows`` (``tests/demo`` checks that they stay in step).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from dropline.customers.models import Customer
from dropline.demo.brand import CURRENCY
from dropline.demo.history import PlannedOrder, plan_orders, plan_shoppers
from dropline.demo.steps import DemoContext, demo_step
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import order_event_payload
from dropline.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from dropline.security import hash_password

# Every demo customer signs in with this password (hashed once, shared by all demo rows).
CUSTOMER_PASSWORD = "ember-and-fig-shopper"
PAYMENT_PROVIDER = "demo"


@demo_step("customers", order=400, label="Customers")
def seed_customers(ctx: DemoContext) -> str:
    shoppers = plan_shoppers(ctx.rng, count=ctx.customers, now=ctx.now)
    password_hash = hash_password(CUSTOMER_PASSWORD)
    rows = [{"email": s.email, "name": s.name, "password_hash": password_hash,
             "acquisition_source": s.source, "acquisition_campaign": s.campaign,
             "created_at": s.signed_up_at} for s in shoppers]
    ids = _insert_returning_ids(ctx, Customer, rows)
    for customer_id, shopper in zip(ids, shoppers, strict=True):
        ctx.ids.customers[customer_id] = shopper
        ctx.record_later(at=shopper.signed_up_at, type="customer.registered",
                         subject_type="customer", subject_id=customer_id, customer_id=customer_id,
                         payload={"acquisition_source": shopper.source,
                                  "acquisition_campaign": shopper.campaign})
    if shoppers:
        ctx.summary["customer login"] = (f"{shoppers[0].email} / {CUSTOMER_PASSWORD} "
                                         "(the same password for every demo customer)")
    return f"{len(shoppers)} customers"


@demo_step("orders", order=500, label="Order history")
def seed_orders(ctx: DemoContext) -> str:
    customer_ids = {shopper.index: cid for cid, shopper in ctx.ids.customers.items()}
    plans = plan_orders(ctx.rng, list(ctx.ids.customers.values()), now=ctx.now,
                        variant_ids=ctx.ids.variants,
                        flat_shipping=ctx.settings.shop.flat_shipping_amount,
                        free_shipping_threshold=ctx.settings.shop.free_shipping_threshold)
    if not plans:
        return "no orders"
    order_ids = _insert_returning_ids(ctx, Order, [
        _order_row(ctx, plan, customer_ids[plan.shopper.index]) for plan in plans])
    ctx.ids.orders.extend(order_ids)
    ctx.session.execute(insert(OrderLine), [
        {"order_id": order_id, "variant_id": line.variant_id, "sku": line.sku,
         "product_name": line.product_name, "variant_name": line.variant_name,
         "product_family": line.family, "condition_grade": line.grade,
         "condition_disclosure": line.disclosure, "unit_price_amount": line.unit_price_amount,
         "quantity": line.quantity, "line_total_amount": line.line_total_amount}
        for order_id, plan in zip(order_ids, plans, strict=True) for line in plan.lines
    ])
    payment_ids = _insert_returning_ids(ctx, Payment, [
        {"order_id": order_id, "provider": PAYMENT_PROVIDER,
         "idempotency_key": f"demo_pay_{order_id}", "provider_ref": f"demo_ch_{order_id:07d}",
         "status": PaymentStatus.succeeded, "amount": plan.totals.total_amount,
         "currency": CURRENCY, "card_last4": plan.shopper.card_last4,
         "card_fingerprint": plan.shopper.card_fingerprint, "decline_code": None,
         "created_at": plan.created_at, "updated_at": plan.paid_at}
        for order_id, plan in zip(order_ids, plans, strict=True)
    ])
    actor = f"admin:{ctx.ids.admin_user_id}" if ctx.ids.admin_user_id else "system"
    refund_rows = [
        {"order_id": order_id, "payment_id": payment_id, "amount": refund.amount,
         "currency": CURRENCY, "reason": refund.reason, "status": RefundStatus.succeeded,
         "idempotency_key": f"demo_refund_{order_id}_{n}",
         "provider_ref": f"demo_re_{order_id:07d}_{n}", "actor": actor, "created_at": refund.at}
        for order_id, payment_id, plan in zip(order_ids, payment_ids, plans, strict=True)
        for n, refund in enumerate(plan.refunds)
    ]
    refund_ids = iter(_insert_returning_ids(ctx, Refund, refund_rows) if refund_rows else [])

    for order_id, plan in zip(order_ids, plans, strict=True):
        customer_id = customer_ids[plan.shopper.index]
        payload = order_payload(order_id, plan)
        ctx.record_later(at=plan.created_at, type="order.created", subject_type="order",
                         subject_id=order_id, customer_id=customer_id, payload=payload)
        ctx.record_later(at=plan.paid_at, type="order.paid", subject_type="order",
                         subject_id=order_id, customer_id=customer_id,
                         payload={**payload, "decline_code": None})
        refunded = 0
        for refund in plan.refunds:
            refunded += refund.amount
            ctx.record_later(at=refund.at, type="order.refunded", subject_type="order",
                             subject_id=order_id, customer_id=customer_id,
                             payload={**payload, "refund_id": next(refund_ids),
                                      "refund_amount": refund.amount, "refunded_amount": refunded,
                                      "reason": refund.reason, "actor": actor})
    return f"{len(plans)} orders, {len(refund_rows)} refunds"


def order_payload(order_id: int, plan: PlannedOrder) -> dict[str, Any]:
    """The payload ``orders.flows`` puts on every order event (what telemetry cuts by)."""
    return order_event_payload(
        order_id=order_id, total_amount=plan.totals.total_amount, currency=CURRENCY,
        acquisition_source=plan.shopper.source, acquisition_campaign=plan.shopper.campaign,
        product_families=plan.families, fulfilment_path=plan.fulfilment_path)


def _order_row(ctx: DemoContext, plan: PlannedOrder, customer_id: int) -> dict[str, Any]:
    totals, refunded = plan.totals, plan.refunded_amount
    if refunded == 0:
        status = OrderStatus.paid
    elif refunded == totals.total_amount:
        status = OrderStatus.refunded
    else:
        status = OrderStatus.partially_refunded
    return {
        "customer_id": customer_id, "email": plan.shopper.email, "status": status,
        "currency": totals.currency, "subtotal_amount": totals.subtotal_amount,
        "discount_amount": totals.discount_amount, "shipping_amount": totals.shipping_amount,
        "total_amount": totals.total_amount, "refunded_amount": refunded,
        "checkout_reference": None, "cart_id": None,
        "location_id": ctx.ids.locations[plan.location_code],
        "fulfilment_path": plan.fulfilment_path, "acquisition_source": plan.shopper.source,
        "acquisition_campaign": plan.shopper.campaign, "shipping_address": plan.shipping_address,
        "created_at": plan.created_at, "paid_at": plan.paid_at,
    }


def _insert_returning_ids(ctx: DemoContext, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """One multi-row INSERT; the new ids come back in the order of ``rows`` (both engines)."""
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(ctx.session.scalars(statement, rows))
