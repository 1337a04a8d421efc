"""``dropline demo`` step: a year of returns, graded stock with serials, and the suspicious
patterns the review queue exists for.

* restored diffusers in stock at the micro-factory carry serials, and every diffuser sold in
  the order history had its serial recorded;
* ordinary returns across the year (about one order in 25, requested 8-25 days after purchase, received three days
  later, graded, restocked, scored and, below the threshold, refunded);
* five recent cases left open in the review queue, one per pattern: a serial returner, a
  worn perfume sent back within days (wardrobing), a diffuser coming back with a serial the
  shop never sold, an account sharing a card with an account that disputed a charge, and a
  customer with a chargeback;
* older cases that crossed the threshold were decided by the ops lead, so the queue page also
  shows recent human decisions.

The demo writes in its one transaction, so refunds are settled in the session (a demo payment
provider, like the order history's) instead of calling the card provider between
transactions as ``risk.flows.refund_return`` does."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from dropline.audit import acting_as
from dropline.catalog.models import ConditionGrade, Variant
from dropline.clock import FrozenClock
from dropline.demo import DemoContext, demo_step
from dropline.demo.brand import FACTORY
from dropline.errors import DomainError
from dropline.events.models import DomainEvent
from dropline.events.service import record_event
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import order_event_payload
from dropline.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from dropline.risk import returns
from dropline.risk.models import ReturnRequest, ReturnStatus, SerialUnit
from dropline.webhooks.models import WebhookDelivery

ORDINARY_RETURNS = 40  # at most; about one paid order in 25 comes back
REASONS = ("changed-mind", "wrong-size", "no-longer-needed", "not-as-described", "defective",
           "damaged-in-transit")


def _settle(ctx: DemoContext, clock: FrozenClock, ret: ReturnRequest) -> None:
    """Pays an approved refund inside the demo's transaction (demo provider)."""
    order = ctx.session.get(Order, ret.order_id)
    assert order is not None
    amount = ret.refund_amount or 0
    if amount:
        payment = ctx.session.scalar(select(Payment).where(
            Payment.order_id == order.id, Payment.status == PaymentStatus.succeeded))
        assert payment is not None
        order.refunded_amount += amount
        order.status = (OrderStatus.refunded if order.refunded_amount == order.total_amount
                        else OrderStatus.partially_refunded)
        refund = Refund(order_id=order.id, payment_id=payment.id, amount=amount,
                        currency=order.currency, reason=f"return {ret.id}",
                        status=RefundStatus.succeeded, idempotency_key=f"return-{ret.id}",
                        provider_ref=f"demo_re_return_{ret.id}", actor="system",
                        created_at=clock.now())
        ctx.session.add(refund)
        ctx.session.flush()
        ret.refund_id = refund.id
        families = ctx.session.scalars(select(OrderLine.product_family).where(
            OrderLine.order_id == order.id))
        # As orders.flows.refund_order records it: telemetry nets refunds out of revenue.
        record_event(ctx.session, clock=clock, type="order.refunded", subject_type="order",
                     subject_id=order.id, customer_id=order.customer_id, payload={
                         **order_event_payload(
                             order_id=order.id, total_amount=order.total_amount,
                             currency=order.currency,
                             acquisition_source=order.acquisition_source,
                             acquisition_campaign=order.acquisition_campaign,
                             product_families=families,
                             fulfilment_path=order.fulfilment_path),
                         "refund_id": refund.id, "refund_amount": amount,
                         "refunded_amount": order.refunded_amount,
                         "reason": refund.reason, "actor": "system"})
    ret.status = ReturnStatus.refunded
    ctx.session.flush()
    returns._event(ctx.session, clock, ret, "return.refunded", refund_id=ret.refund_id,
                   refund_amount=amount, actor="system")


def _run_return(ctx: DemoContext, clock: FrozenClock, line: Any, *, requested: datetime,
                reason: str, grade: ConditionGrade, serial: str | None = None,
                device: str = "", decide_if_older_than: datetime | None = None
                ) -> ReturnRequest | None:
    if requested + timedelta(days=3) >= ctx.now:
        return None
    if serial is None:  # a serialised unit comes back with the serial it was sold with
        serial = ctx.session.scalar(select(SerialUnit.serial).where(
            SerialUnit.order_line_id == line.line_id).limit(1))
    clock.current = requested
    try:
        ret = returns.request_return(ctx.session, clock=clock, customer_id=line.customer_id,
                                     order_id=line.order_id, order_line_id=line.line_id,
                                     quantity=1, reason=reason, device_id=device)
    except DomainError:  # outside its window, final sale, already returned: skip this one
        return None
    clock.current = requested + timedelta(days=3)
    returns.receive_return(ctx.session, clock=clock, return_id=ret.id, grade=grade,
                           location_code=ctx.settings.shop.default_location_code, serial=serial)
    if ret.status is ReturnStatus.in_review and decide_if_older_than is not None \
            and ret.requested_at < decide_if_older_than:
        clock.current += timedelta(days=1)
        ops = f"admin:{ctx.ids.admin_user_id}" if ctx.ids.admin_user_id else "system"
        if ret.id % 3:
            returns.approve_return(ctx.session, clock=clock, return_id=ret.id, actor=ops,
                                   note="checked with the customer; goodwill")
        else:
            returns.deny_return(ctx.session, clock=clock, return_id=ret.id, actor=ops,
                                note="pattern of returns; refund declined, item sent back")
    if ret.status is ReturnStatus.approved:
        _settle(ctx, clock, ret)
    return ret


@demo_step("risk", order=650, label="Returns, graded serials and risk cases")
def seed_risk(ctx: DemoContext) -> str:
    session, rng = ctx.session, ctx.rng
    clock = FrozenClock(ctx.now)
    before = session.scalar(select(func.max(DomainEvent.id))) or 0
    with acting_as("demo", clock=clock):
        note = _seed(ctx, session, rng, clock)
    _requeue_events(ctx, after_id=before)
    return note


def _requeue_events(ctx: DemoContext, *, after_id: int) -> None:
    """The services wrote their events as they went, at historical times; the demo's event
    log must read in time order, so they are taken back and queued with ``record_later``
    (written with every step's events, oldest first)."""
    written = list(ctx.session.scalars(select(DomainEvent).where(DomainEvent.id > after_id)
                                       .order_by(DomainEvent.id)))
    for event in written:
        ctx.record_later(at=event.occurred_at, type=event.type, subject_type=event.subject_type,
                         subject_id=event.subject_id, customer_id=event.customer_id,
                         payload=event.payload)
    if written:
        ctx.session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id > after_id))
        ctx.session.execute(delete(DomainEvent).where(DomainEvent.id > after_id))


def _seed(ctx: DemoContext, session: Any, rng: Any, clock: FrozenClock) -> str:
    now = ctx.now
    lines = session.execute(
        select(Order.id.label("order_id"), Order.customer_id, Order.paid_at,
               OrderLine.id.label("line_id"), OrderLine.product_family, OrderLine.variant_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.status == OrderStatus.paid, Order.paid_at.is_not(None))
        .order_by(Order.id, OrderLine.id)).all()
    if not lines:
        return "no orders to return"

    # Graded stock with serials, and a serial recorded for every diffuser sold.
    graded = list(session.scalars(select(Variant).where(
        Variant.condition_grade != ConditionGrade.new).order_by(Variant.id)))
    for variant in graded:
        returns.register_serials(session, clock=clock, variant_id=variant.id,
                                 serials=[f"EF{variant.id:03d}-{n:04d}" for n in range(1, 6)],
                                 location_code=FACTORY)
    sold_serials = 0
    for line in lines:
        if line.product_family == "restored-diffusers":
            clock.current = line.paid_at
            returns.assign_serials(session, clock=clock, order_id=line.order_id,
                                   order_line_id=line.line_id,
                                   serials=[f"EF-SN-{line.line_id:06d}"])
            sold_serials += 1

    by_customer: dict[int, list[Any]] = defaultdict(list)
    for line in lines:
        by_customer[line.customer_id].append(line)
    recent = [line for line in lines if now - timedelta(days=25) <= line.paid_at
              <= now - timedelta(days=8)]
    used: set[int] = set()

    def pick(candidates: list[Any]) -> Any | None:
        free = [c for c in candidates if c.customer_id not in used]
        if not free:
            return None
        choice = rng.choice(free)
        used.add(choice.customer_id)
        return choice

    settled_before = now - timedelta(days=14)
    patterns: list[str] = []

    # 1. A serial returner: returns nearly everything, the latest still to decide.
    returners = [cid for cid, ls in by_customer.items() if len({x.order_id for x in ls}) >= 3
                 and max(ls, key=lambda x: x.paid_at) in recent]
    if returners:
        cid = rng.choice(sorted(returners))
        used.add(cid)
        history = sorted({x.order_id: x for x in by_customer[cid]}.values(),
                         key=lambda x: x.paid_at)
        for line in history[:-1]:  # decided long ago by the ops lead if they needed review
            _run_return(ctx, clock, line, requested=line.paid_at + timedelta(days=8),
                        reason="changed-mind", grade=ConditionGrade.new,
                        decide_if_older_than=settled_before)
        _run_return(ctx, clock, history[-1], requested=history[-1].paid_at + timedelta(days=4),
                    reason="changed-mind", grade=ConditionGrade.new)
        patterns.append("serial returner")

    # 2. Wardrobing: a perfume worn and sent back two days after delivery.
    perfume = pick([x for x in recent if x.product_family == "eau-de-parfum"])
    if perfume is not None:
        _run_return(ctx, clock, perfume, requested=perfume.paid_at + timedelta(days=2),
                    reason="changed-mind", grade=ConditionGrade.used)
        patterns.append("wardrobing")

    # 3. A diffuser coming back with a serial the shop never sold.
    diffuser = pick([x for x in recent if x.product_family == "restored-diffusers"]) \
        or pick(recent)
    if diffuser is not None:
        _run_return(ctx, clock, diffuser, requested=diffuser.paid_at + timedelta(days=5),
                    reason="not-as-described", grade=ConditionGrade.refurbished_c,
                    serial="EF-SN-999999")
        patterns.append("serial mismatch")

    # 4. Linked accounts: a shopper sharing a card with an account that disputed a charge.
    sharer, disputer = pick(recent), pick([x for x in lines if x.paid_at < now - timedelta(
        days=40)])
    if sharer is not None and disputer is not None:
        card = session.scalar(select(Payment).where(Payment.order_id == sharer.order_id))
        other = session.scalar(select(Payment).where(Payment.order_id == disputer.order_id))
        other.card_fingerprint = card.card_fingerprint
        clock.current = disputer.paid_at + timedelta(days=35)
        order = session.get(Order, disputer.order_id)
        returns.record_chargeback(session, clock=clock, order_id=order.id,
                                  amount=order.total_amount, reason="fraudulent",
                                  actor="system")
        _run_return(ctx, clock, sharer, requested=sharer.paid_at + timedelta(days=4),
                    reason="wrong-size", grade=ConditionGrade.new, device="ios-7f3a")
        patterns.append("linked accounts")

    # 5. A customer with a chargeback asking for a refund on another order.
    disputed = [cid for cid, ls in by_customer.items() if cid not in used
                and len({x.order_id for x in ls}) >= 2 and any(x in recent for x in ls)]
    if disputed:
        cid = rng.choice(sorted(disputed))
        used.add(cid)
        mine = sorted(by_customer[cid], key=lambda x: x.paid_at)
        first = session.get(Order, mine[0].order_id)
        clock.current = mine[0].paid_at + timedelta(days=20)
        returns.record_chargeback(session, clock=clock, order_id=first.id,
                                  amount=first.total_amount, reason="product not received",
                                  actor="system")
        last = next(x for x in reversed(mine) if x in recent)
        _run_return(ctx, clock, last, requested=last.paid_at + timedelta(days=4),
                    reason="no-longer-needed", grade=ConditionGrade.new)
        patterns.append("chargeback")

    # Ordinary returns across the year.
    ordinary, target = 0, min(ORDINARY_RETURNS, max(2, len({x.order_id for x in lines}) // 25))
    pool = [x for x in lines if x.customer_id not in used]
    rng.shuffle(pool)
    for line in pool[:target * 3]:
        if ordinary >= target:
            break
        if line.customer_id in used:
            continue
        grade = rng.choices([ConditionGrade.new, ConditionGrade.refurbished_b,
                             ConditionGrade.used], weights=[8, 1, 1])[0]
        done = _run_return(ctx, clock, line,
                           requested=line.paid_at + timedelta(days=rng.randint(8, 25)),
                           reason=rng.choice(REASONS), grade=grade,
                           decide_if_older_than=settled_before)
        if done is not None:
            used.add(line.customer_id)
            ordinary += 1
    clock.current = now
    open_cases = session.scalar(select(ReturnRequest.id).where(
        ReturnRequest.status == ReturnStatus.in_review).limit(1)) is not None
    ctx.summary["returns"] = (f"{ordinary} ordinary, patterns: {', '.join(patterns) or 'none'}"
                              f"{'' if open_cases else ' (queue empty)'}")
    return (f"{len(graded) * 5} graded serials in stock, {sold_serials} sold, {ordinary} "
            f"returns, {len(patterns)} suspicious patterns")
