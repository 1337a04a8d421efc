"""Attention signals: every touch a shopper leaves (a drop page viewed, a waiting room joined,
a waitlist joined, a member signing in, an email opened or clicked, a drop purchase), counted
a day, for the brand and per member segment.

Touches come from where the system already keeps them: the event log for page views and
email (and sign-ins recorded as events, e.g. the demo's history), the customer sessions table
for storefront sign-ins (each session row is one sign-in, with its time), and the drop tables
themselves for waiting-room joins, waitlist sign-ups and purchases (their rows carry the time;
copying them into events would count twice).
``daily_counts`` is pure; ``load_touches`` is the one read of the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.customers.models import CustomerSession
from dropline.drops.models import Drop, DropHold, DropQueueEntry, DropWaitlistEntry
from dropline.events.models import DomainEvent
from dropline.memberships.models import Membership
from dropline.orders.models import Order, OrderStatus

# Event type -> kind of touch. Types not recorded yet simply contribute nothing.
ATTENTION_EVENTS: dict[str, str] = {
    "drop.viewed": "page_view",
    "member.signed_in": "sign_in",
    "customer.signed_in": "sign_in",
    "email.opened": "email_open",
    "email.clicked": "email_click",
}
KINDS = ("page_view", "sign_in", "email_open", "email_click", "waiting_room", "waitlist",
         "purchase")
ALL = "all"
NON_MEMBER = "non-member"
ANONYMOUS = "anonymous"
SOLD = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)


@dataclass(frozen=True)
class Touch:
    at: datetime
    kind: str
    segment: str  # a member segment, "non-member" or "anonymous"


@dataclass(frozen=True)
class DailySeries:
    start: date
    counts: np.ndarray  # touches a day, start .. start + len - 1
    by_kind: dict[str, np.ndarray]

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(len(self.counts))]

    def day_index(self, day: date) -> int:
        return (day - self.start).days


def daily_counts(touches: Iterable[Touch], *, start: date, end: date,
                 segment: str = ALL) -> DailySeries:
    """Touches a day from ``start`` to ``end`` inclusive; ``segment`` keeps only that one."""
    n = (end - start).days + 1
    if n <= 0:
        raise ValueError("end is before start")
    by_kind = {kind: np.zeros(n) for kind in KINDS}
    for touch in touches:
        if segment != ALL and touch.segment != segment:
            continue
        i = (touch.at.date() - start).days
        if 0 <= i < n:
            by_kind.setdefault(touch.kind, np.zeros(n))[i] += 1
    total = np.sum(list(by_kind.values()), axis=0) if by_kind else np.zeros(n)
    return DailySeries(start, total, by_kind)


def segments_of(touches: Sequence[Touch]) -> list[str]:
    return sorted({t.segment for t in touches})


def member_segments(session: Session) -> dict[int, str]:
    """Each member's segment (their latest membership's), "unclassified" until computed."""
    out: dict[int, str] = {}
    for customer_id, segment in session.execute(
            select(Membership.customer_id, Membership.segment).order_by(Membership.started_at)):
        out[customer_id] = segment or "unclassified"
    return out


def load_touches(session: Session, *, since: datetime, until: datetime) -> list[Touch]:
    segments = member_segments(session)

    def seg(customer_id: int | None) -> str:
        if customer_id is None:
            return ANONYMOUS
        return segments.get(customer_id, NON_MEMBER)

    touches = [Touch(at, ATTENTION_EVENTS[kind], seg(customer)) for at, kind, customer in
               session.execute(select(DomainEvent.occurred_at, DomainEvent.type,
                                      DomainEvent.customer_id)
                               .where(DomainEvent.type.in_(list(ATTENTION_EVENTS)),
                                      DomainEvent.occurred_at >= since,
                                      DomainEvent.occurred_at < until))]
    touches += [Touch(at, "sign_in", seg(customer)) for at, customer in session.execute(
        select(CustomerSession.created_at, CustomerSession.customer_id)
        .where(CustomerSession.created_at >= since, CustomerSession.created_at < until))]
    touches += [Touch(at, "waiting_room", seg(customer)) for at, customer in session.execute(
        select(DropQueueEntry.joined_at, DropQueueEntry.customer_id)
        .where(DropQueueEntry.joined_at >= since, DropQueueEntry.joined_at < until))]
    touches += [Touch(at, "waitlist", seg(customer)) for at, customer in session.execute(
        select(DropWaitlistEntry.joined_at, DropWaitlistEntry.customer_id)
        .where(DropWaitlistEntry.joined_at >= since, DropWaitlistEntry.joined_at < until))]
    touches += [Touch(at, "purchase", seg(customer)) for at, customer in session.execute(
        select(Order.paid_at, Order.customer_id).join(DropHold, DropHold.order_id == Order.id)
        .where(Order.status.in_(SOLD), Order.paid_at >= since, Order.paid_at < until))
        if at is not None]
    return touches


def drop_start_days(session: Session, *, until: datetime) -> list[tuple[int, str, date]]:
    """(id, slug, day) of every drop that has started before ``until``, oldest first."""
    return [(i, slug, at.date()) for i, slug, at in session.execute(
        select(Drop.id, Drop.slug, Drop.starts_at).where(Drop.starts_at < until)
        .order_by(Drop.starts_at))]
