"""Demo step: Ember & Fig's year of drops (see ``demo_history``): eleven past drops with their
waiting rooms, buyers, orders, waitlists and restocks, a year of drop page views and member
sign-ins around them, and one drop scheduled 12 days ahead, so ``dropline drops plan`` has a
real cycle to learn.

Rows are written in bulk (one INSERT per table): going through the drop checkout for a few
hundred historical purchases would take minutes and prove nothing the drop tests do not.
Page views and sign-ins are inserted straight into the event log for the same reason; they
are history, and no webhook endpoint existed to be told about them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from dropline.catalog.models import ConditionGrade, Variant
from dropline.clock import FrozenClock
from dropline.demo import DemoContext, demo_step
from dropline.demo.brand import CENTRAL, CURRENCY
from dropline.drops import rules as drop_rules
from dropline.drops import service as drops
from dropline.drops.models import (
    Drop,
    DropBuyer,
    DropHold,
    DropQueueEntry,
    DropSlot,
    DropWaitlistEntry,
    HoldSource,
    HoldStatus,
    WaitlistStatus,
)
from dropline.events.models import DomainEvent
from dropline.memberships.models import Membership
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import order_event_payload
from dropline.payments.models import Payment, PaymentStatus
from dropline.planning.demo_history import UPCOMING_IN_DAYS, PlannedDrop, page_views, plan_drops


def _variants(ctx: DemoContext, k: int) -> list[int]:
    skus = [sku for sku in ctx.ids.variants if sku.endswith(("-50", "-100"))]
    skus = sorted(skus)
    if len(skus) < 2:
        return list(ctx.ids.variants.values())[:2]
    pair = 2 * (k % (len(skus) // 2))
    return [ctx.ids.variants[skus[pair]], ctx.ids.variants[skus[pair + 1]]]


def _insert_ids(ctx: DemoContext, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(ctx.session.scalars(statement, rows))


@demo_step("planning", order=700, label="Drop history")
def seed_drop_history(ctx: DemoContext) -> str:
    session = ctx.session
    if not ctx.ids.customers or not ctx.ids.variants:
        return "skipped: no customers or variants"
    members = {m.customer_id: m.segment for m in session.scalars(select(Membership))}
    segments = {cid: members.get(cid) for cid in ctx.ids.customers}
    plans = plan_drops(ctx.rng, now=ctx.now, segments=segments)
    location = CENTRAL if CENTRAL in ctx.ids.locations else None
    prices = {vid: price for vid, price in session.execute(select(Variant.id, Variant.price_amount))}
    names = {vid: (sku, name) for vid, sku, name in
             session.execute(select(Variant.id, Variant.sku, Variant.name))}
    orders = sold_total = left_total = 0
    for k, plan in enumerate(plans):
        variant_ids = _variants(ctx, k)
        orders_k, sold, left = _write_drop(ctx, plan, variant_ids, prices, names, location)
        orders += orders_k
        sold_total += sold
        left_total += left
    upcoming_start = (ctx.now + timedelta(days=UPCOMING_IN_DAYS)).replace(
        hour=18, minute=0, second=0, microsecond=0)
    drops.create_drop(
        session, clock=FrozenClock(ctx.now), slug="ember-oud", name="Ember Oud",
        variants=[drops.VariantCap(v, None) for v in _variants(ctx, len(plans))],
        shared_cap=60, per_person_limit=2, location_code=location, actor="demo",
        schedule=drops.DropSchedule(starts_at=upcoming_start,
                                    ends_at=upcoming_start + timedelta(days=2),
                                    early_access_minutes=30, admission_per_minute=300))
    views = page_views(ctx.rng, plans, now=ctx.now, members=sorted(members),
                       customers=sorted(ctx.ids.customers))
    if views:
        session.execute(insert(DomainEvent), [
            {"event_id": str(uuid.uuid4()), "type": kind, "subject_type": "shop",
             "subject_id": "storefront", "customer_id": customer, "occurred_at": at,
             "payload": {"source": "demo"}} for at, kind, customer in views])
    ctx.summary["drop history"] = (f"{len(plans)} past drops, {sold_total} units sold, "
                                   f"{left_total} left over; 1 scheduled")
    return (f"{len(plans)} past drops ({orders} orders), {len(views):,} page views and "
            "sign-ins, 1 drop scheduled")


def _write_drop(ctx: DemoContext, plan: PlannedDrop, variant_ids: list[int],
                prices: dict[int, int], names: dict[int, tuple[str, str]], location: str | None
                ) -> tuple[int, int, int]:
    session = ctx.session
    created = plan.starts_at - timedelta(days=10)
    drop = drops.create_drop(
        session, clock=FrozenClock(created), slug=plan.slug, name=plan.name,
        variants=[drops.VariantCap(v, None) for v in variant_ids], shared_cap=plan.cap,
        per_person_limit=2, location_code=location, actor="demo",
        schedule=drops.DropSchedule(starts_at=plan.starts_at, ends_at=plan.ends_at,
                                    admission_per_minute=300))
    # Who gets units: in order of arrival until the cap is gone; the rest join the waitlist.
    left = plan.cap
    buys, waits = [], []
    for want in plan.wants:
        if want.units <= left:
            left -= want.units
            buys.append((want, HoldSource.queue))
        else:
            waits.append(want)
    restocked = 0
    statuses: list[WaitlistStatus] = []
    for want in waits:
        if plan.restock:
            restocked += want.units
            buys.append((want, HoldSource.offer))
            statuses.append(WaitlistStatus.claimed)
        else:
            statuses.append(WaitlistStatus.lapsed)
    if restocked:
        session.execute(update(Drop).where(Drop.id == drop.id)
                        .values(shared_cap=plan.cap + restocked))
        ctx.record_later(at=plan.starts_at + timedelta(hours=20), type="drop.restocked",
                         subject_type="drop", subject_id=drop.id,
                         payload={"units": restocked, "variant_id": None, "actor": "demo"})
    sold = sum(w.units for w, _ in buys)
    remaining = drop_rules.spread_units(plan.cap + restocked - sold, drop.slot_count)
    for slot_no, units in enumerate(remaining):
        session.execute(update(DropSlot).where(DropSlot.drop_id == drop.id,
                                               DropSlot.slot_no == slot_no)
                        .values(remaining=units))
    queue = [(w.customer_id, w.at - timedelta(minutes=5)) for w in plan.wants]
    queue += list(plan.extra_queue)
    if queue:  # an empty executemany would insert one row of defaults
        session.execute(insert(DropQueueEntry), [
            {"drop_id": drop.id, "customer_id": c, "sort_key": ctx.rng.random(),
             "joined_at": at, "ip": "", "tokens_issued": 1,
             "tokens_used": 1 if i < len(plan.wants) else 0}
            for i, (c, at) in enumerate(queue)])
    order_rows, lines = [], []
    for want, source in buys:
        variant = variant_ids[want.variant_index % len(variant_ids)]
        paid_at = want.at + timedelta(minutes=3) if source is HoldSource.queue \
            else plan.starts_at + timedelta(hours=22)
        shopper = ctx.ids.customers[want.customer_id]
        subtotal = prices[variant] * want.units
        order_rows.append({
            "customer_id": want.customer_id, "email": shopper.email, "status": OrderStatus.paid,
            "currency": CURRENCY, "subtotal_amount": subtotal, "discount_amount": 0,
            "shipping_amount": 0, "total_amount": subtotal, "refunded_amount": 0,
            "checkout_reference": None, "cart_id": None,
            "location_id": ctx.ids.locations.get(location) if location else None,
            "fulfilment_path": "central", "acquisition_source": shopper.source,
            "acquisition_campaign": shopper.campaign, "shipping_address": shopper.address,
            "created_at": paid_at - timedelta(seconds=40), "paid_at": paid_at})
        lines.append((variant, want, source, paid_at))
    order_ids = _insert_ids(ctx, Order, order_rows)
    if order_ids:
        session.execute(insert(OrderLine), [
            {"order_id": oid, "variant_id": v, "sku": names[v][0], "product_name": plan.name,
             "variant_name": names[v][1], "product_family": "eau-de-parfum",
             "condition_grade": ConditionGrade.new, "condition_disclosure": "",
             "unit_price_amount": prices[v], "quantity": w.units,
             "line_total_amount": prices[v] * w.units}
            for oid, (v, w, _, _) in zip(order_ids, lines, strict=True)])
        session.execute(insert(Payment), [
            {"order_id": oid, "provider": "demo", "idempotency_key": f"demo_drop_pay_{oid}",
             "provider_ref": f"demo_ch_d{oid:07d}", "status": PaymentStatus.succeeded,
             "amount": row["total_amount"], "currency": CURRENCY, "card_last4": "4242",
             "card_fingerprint": "", "decline_code": None, "created_at": row["created_at"],
             "updated_at": row["paid_at"]}
            for oid, row in zip(order_ids, order_rows, strict=True)])
        hold_ids = _insert_ids(ctx, DropHold, [
            {"drop_id": drop.id, "customer_id": w.customer_id, "status": HoldStatus.converted,
             "source": source, "quantity": w.units,
             "lines": [{"variant_id": v, "quantity": w.units}], "takes": [],
             "created_at": paid_at - timedelta(minutes=2), "expires_at": paid_at
             + timedelta(minutes=8), "closed_at": paid_at, "order_id": oid}
            for oid, (v, w, source, paid_at) in zip(order_ids, lines, strict=True)])
        session.execute(insert(DropBuyer), [
            {"drop_id": drop.id, "customer_id": w.customer_id, "units": w.units,
             "holding": False} for _, w, _, _ in lines])
        offer_holds = {w.customer_id: hid for hid, (_, w, source, _) in
                       zip(hold_ids, lines, strict=True) if source is HoldSource.offer}
        for oid, row, (_, _, _, paid_at) in zip(order_ids, order_rows, lines, strict=True):
            payload = order_event_payload(
                order_id=oid, total_amount=row["total_amount"], currency=CURRENCY,
                acquisition_source=row["acquisition_source"],
                acquisition_campaign=row["acquisition_campaign"],
                product_families=["eau-de-parfum"], fulfilment_path="central")
            ctx.record_later(at=row["created_at"], type="order.created", subject_type="order",
                             subject_id=oid, customer_id=row["customer_id"], payload=payload)
            ctx.record_later(at=paid_at, type="order.paid", subject_type="order",
                             subject_id=oid, customer_id=row["customer_id"],
                             payload={**payload, "decline_code": None})
    else:
        offer_holds = {}
    if waits:
        session.execute(insert(DropWaitlistEntry), [
            {"drop_id": drop.id, "customer_id": w.customer_id,
             "variant_id": variant_ids[w.variant_index % len(variant_ids)],
             "quantity": w.units, "status": status, "joined_at": w.at + timedelta(minutes=4),
             "hold_id": offer_holds.get(w.customer_id)}
            for w, status in zip(waits, statuses, strict=True)])
    return len(order_ids), sold, plan.cap + restocked - sold
