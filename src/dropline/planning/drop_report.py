"""The post-drop report: what sold, how fast, how the waiting room converted, what lapsed or
failed, what looks like a bot, and the drop's sustainability row. Reads only; the same function
serves the CLI and the API. It lives in planning (above drops) because it joins the drop's
facts with planning's sustainability figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.drops import service
from dropline.drops.models import (
    Drop,
    DropHold,
    DropQueueEntry,
    DropVariant,
    DropWaitlistEntry,
    HoldSource,
    HoldStatus,
)
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import Payment
from dropline.planning.service import drop_sustainability

SOLD = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)
SHARED_IP_THRESHOLD = 5  # more queue entries than this from one address is flagged


@dataclass
class DropReport:
    drop_id: int
    slug: str
    state: str
    cap: int
    units_sold: int
    units_held: int
    units_remaining: int
    sell_through: float
    opened_at: datetime
    sold_out_at: datetime | None
    time_to_sell_out_seconds: float | None
    queue_joined: int
    queue_admitted: int
    queue_redeemed: int
    buyers: int
    waiting_room_conversion: float | None
    holds: dict[str, int]
    holds_expired: int
    payment_failures: int
    waitlist: dict[str, int]
    bot_flags: list[dict[str, Any]] = field(default_factory=list)
    bypassed_queue_order_ids: list[int] = field(default_factory=list)
    sustainability: dict[str, Any] | None = None  # planning.sustainability: waste, totals

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("opened_at", "sold_out_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def drop_report(session: Session, *, clock: Clock, drop: Drop) -> DropReport:
    variants = service.drop_variants(session, drop.id)
    cap = service.cap_of(drop, variants)
    left = sum(service.remaining_by_pool(session, drop.id).values())
    now = clock.now()
    opened_at = drop.starts_at - timedelta(minutes=drop.early_access_minutes)  # first door

    holds = Counter({status.value: count for status, count in session.execute(
        select(DropHold.status, func.count()).where(DropHold.drop_id == drop.id)
        .group_by(DropHold.status))})
    held = session.scalar(select(func.coalesce(func.sum(DropHold.quantity), 0)).where(
        DropHold.drop_id == drop.id, DropHold.status == HoldStatus.active,
        DropHold.expires_at > now)) or 0
    sold_rows = session.execute(
        select(Order.id, Order.customer_id, Order.paid_at, DropHold.quantity)
        .join(DropHold, DropHold.order_id == Order.id)
        .where(DropHold.drop_id == drop.id, Order.status.in_(SOLD))).all()
    sold = sum(row.quantity for row in sold_rows)
    sold_out_at = max((row.paid_at for row in sold_rows if row.paid_at), default=None) \
        if cap and sold >= cap else None
    failures = session.scalar(select(func.count()).select_from(DropHold).where(
        DropHold.drop_id == drop.id, DropHold.status == HoldStatus.payment_failed)) or 0

    joined, admitted, redeemed = session.execute(
        select(func.count(), func.count().filter(DropQueueEntry.tokens_issued > 0),
               func.count().filter(DropQueueEntry.tokens_used > 0))
        .where(DropQueueEntry.drop_id == drop.id)).one()
    buyers = len({row.customer_id for row in sold_rows})
    waitlist = {status.value: count for status, count in session.execute(
        select(DropWaitlistEntry.status, func.count()).where(DropWaitlistEntry.drop_id == drop.id)
        .group_by(DropWaitlistEntry.status))}

    report = DropReport(
        drop_id=drop.id, slug=drop.slug,
        state=service.state_of(session, clock=clock, drop=drop).value, cap=cap,
        units_sold=sold, units_held=int(held), units_remaining=left,
        sell_through=round(sold / cap, 4) if cap else 0.0, opened_at=opened_at,
        sold_out_at=sold_out_at,
        time_to_sell_out_seconds=(sold_out_at - opened_at).total_seconds()
        if sold_out_at else None,
        queue_joined=joined, queue_admitted=admitted, queue_redeemed=redeemed, buyers=buyers,
        waiting_room_conversion=round(buyers / joined, 4) if joined else None,
        holds=dict(holds), holds_expired=holds.get(HoldStatus.expired.value, 0),
        payment_failures=failures, waitlist=waitlist,
        bot_flags=_bot_flags(session, drop=drop),
        bypassed_queue_order_ids=_bypassed(session, drop=drop, opened_at=opened_at))
    report.sustainability = _sustainability(session, clock=clock, drop=drop)
    return report


def _sustainability(session: Session, *, clock: Clock, drop: Drop) -> dict[str, Any] | None:
    """Units left over, made to order, hours to sell out and the running totals to this drop."""
    row = drop_sustainability(session, clock=clock, slug=drop.slug)
    return row.as_dict() if row else None


def _bot_flags(session: Session, *, drop: Drop) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []
    for ip, count in session.execute(
            select(DropQueueEntry.ip, func.count()).where(DropQueueEntry.drop_id == drop.id)
            .group_by(DropQueueEntry.ip).having(func.count() > SHARED_IP_THRESHOLD)
            .order_by(func.count().desc()).limit(50)):
        flags.append({"kind": "shared-ip", "ip": ip, "queue_entries": count})
    for fingerprint, customers in session.execute(
            select(Payment.card_fingerprint, func.count(func.distinct(Order.customer_id)))
            .join(Order, Order.id == Payment.order_id)
            .join(DropHold, DropHold.order_id == Order.id)
            .where(DropHold.drop_id == drop.id, Payment.card_fingerprint != "")
            .group_by(Payment.card_fingerprint)
            .having(func.count(func.distinct(Order.customer_id)) > 1).limit(50)):
        flags.append({"kind": "shared-card", "card_fingerprint": fingerprint,
                      "customers": customers})
    return flags


def _bypassed(session: Session, *, drop: Drop, opened_at: datetime) -> list[int]:
    """Orders that got drop units without going through the waiting room: orders of the
    drop's variants written during the drop that no drop hold accounts for (e.g. bought from
    ordinary stock through a cart), and, on a drop with a queue, holds taken without an
    admission token or an offer."""
    variant_ids = list(session.scalars(select(DropVariant.variant_id)
                                       .where(DropVariant.drop_id == drop.id)))
    outside = session.scalars(
        select(func.distinct(Order.id))
        .join(OrderLine, OrderLine.order_id == Order.id)
        .outerjoin(DropHold, DropHold.order_id == Order.id)
        .where(OrderLine.variant_id.in_(variant_ids), Order.created_at >= opened_at,
               Order.created_at < drop.ends_at, DropHold.id.is_(None))
        .order_by(Order.id).limit(1000))
    unqueued: list[int] = []
    if drop.queue_enabled:
        unqueued = [order_id for order_id in session.scalars(
            select(DropHold.order_id).where(DropHold.drop_id == drop.id,
                                            DropHold.source == HoldSource.direct,
                                            DropHold.order_id.is_not(None)).limit(1000))
                    if order_id is not None]
    return sorted(set(outside) | set(unqueued))
