"""Frequency segments, from each member's own behaviour (``rules.classify_member``), and the
thresholds the brand sets for them.

Drop days count as event days. Drops sit above memberships (they ask it for early access), so
the days drops started are passed in by the caller as ``drop_days`` (in the shop,
``drops.service.started_drop_days``) rather than read from the drops package here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.events.models import DomainEvent
from dropline.memberships.models import (
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipSetting,
)
from dropline.memberships.rules import (
    MemberActivity,
    MembershipStatus,
    PurchaseRecord,
    SegmentRules,
    classify_member,
    peak_days,
)
from dropline.memberships.settings_store import read_setting, write_setting
from dropline.orders.models import Order, OrderLine, OrderStatus

SETTING = "segment_rules"
LAST_RUN = "segments_computed_at"
# Event days recorded as events (pop-ups, launches); drop days come from the drops table.
EVENT_TYPES = ("drop.opened", "drop.started", "event.held")
PAID = (OrderStatus.paid, OrderStatus.partially_refunded)
# (session, now) -> the days on which drops started, up to now.
DropDays = Callable[[Session, datetime], Iterable[date]]


def get_rules(session: Session) -> SegmentRules:
    return SegmentRules.from_dict(read_setting(session, SETTING) or {})


def set_rules(session: Session, *, clock: Clock, changes: dict[str, Any]) -> SegmentRules:
    rules = SegmentRules.from_dict({**get_rules(session).as_dict(), **changes})
    write_setting(session, clock=clock, key=SETTING, value=rules.as_dict())
    return rules


def claim_segment_run(session: Session, *, clock: Clock, every: timedelta, force: bool) -> bool:
    now = clock.now()
    if session.get(MembershipSetting, LAST_RUN) is None:
        write_setting(session, clock=clock, key=LAST_RUN, value=now.isoformat())
        return True
    condition = [MembershipSetting.key == LAST_RUN]
    if not force:
        condition.append(MembershipSetting.updated_at <= now - every)
    return session.execute(update(MembershipSetting).where(*condition)
                           .values(value=now.isoformat(), updated_at=now)).rowcount == 1


def event_days(session: Session, *, now: datetime, drop_days: DropDays) -> set[date]:
    """Days of drops that have started and of recorded events; with none, the shop's peaks."""
    days = {at.date() for at in session.scalars(
        select(DomainEvent.occurred_at).where(DomainEvent.type.in_(EVENT_TYPES)))}
    days |= set(drop_days(session, now))
    if days:
        return days
    return peak_days([at.date() for at in session.scalars(
        select(Order.created_at).where(Order.status.in_(PAID), Order.total_amount > 0))])


def classify_all(session: Session, *, clock: Clock, drop_days: DropDays,
                 only_unclassified: bool = False) -> int:
    """Classifies every member (or, with ``only_unclassified``, those who have no segment
    yet, e.g. members signed up since the last run)."""
    now = clock.now()
    rules = get_rules(session)
    everyone = session.scalars(select(Membership).where(
        Membership.status != MembershipStatus.failed)).all()
    if not everyone:
        return 0
    programme_start = min(m.started_at for m in everyone)
    members = [m for m in everyone if m.segment is None] if only_unclassified else everyone
    if not members:
        return 0
    customer_ids = sorted({m.customer_id for m in members})
    families: dict[int, set[str]] = {}
    for order_id, family in session.execute(
            select(OrderLine.order_id, OrderLine.product_family)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.customer_id.in_(customer_ids), Order.status.in_(PAID))):
        families.setdefault(order_id, set()).add(family)
    purchases: dict[int, list[PurchaseRecord]] = {}
    for order_id, customer_id, at, total, refunded in session.execute(
            select(Order.id, Order.customer_id, Order.created_at, Order.total_amount,
                   Order.refunded_amount)
            .where(Order.customer_id.in_(customer_ids), Order.status.in_(PAID),
                   Order.total_amount > 0)):
        purchases.setdefault(customer_id, []).append(
            PurchaseRecord(at, total - refunded, tuple(sorted(families.get(order_id, ())))))
    paid = dict(session.execute(
        select(MembershipCharge.membership_id, func.sum(MembershipCharge.amount))
        .where(MembershipCharge.status == ChargeStatus.succeeded)
        .group_by(MembershipCharge.membership_id)).all())
    days = event_days(session, now=now, drop_days=drop_days)
    for membership in members:
        result = classify_member(
            MemberActivity(joined_at=membership.started_at,
                           membership_paid=int(paid.get(membership.id) or 0),
                           purchases=tuple(purchases.get(membership.customer_id, ()))),
            rules=rules, programme_started_at=programme_start, event_days=days, now=now)
        membership.segment = result.segment.value
        membership.segment_reason = result.reason[:300]
        membership.segment_computed_at = now
    session.flush()
    return len(members)


def last_run(session: Session) -> datetime | None:
    value = read_setting(session, LAST_RUN)
    return datetime.fromisoformat(value) if value else None
