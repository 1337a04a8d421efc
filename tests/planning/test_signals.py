"""Attention signals are read from events, sessions and the drop tables, per segment."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from dropline.clock import FrozenClock
from dropline.customers.models import CustomerSession
from dropline.drops.models import DropQueueEntry, DropWaitlistEntry, WaitlistStatus
from dropline.events.service import record_event
from dropline.memberships.models import Membership
from dropline.planning import signals
from tests.drops.builders import make_drop, make_shopper
from tests.memberships.support import make_tier


def test_touches_come_from_events_sessions_queue_and_waitlist_with_segments(db, clock):
    world = make_drop(db, clock, cap=5)
    member, other = make_shopper(db, clock), make_shopper(db, clock)  # each signs in once
    tier = make_tier(db, clock)
    day = clock.now()
    with db.transaction() as session:
        session.execute(insert(Membership.__table__).values(
            **_membership(member.customer_id, tier, day - timedelta(days=30))))
        at = FrozenClock(day + timedelta(days=1))
        record_event(session, clock=at, type="drop.viewed", subject_type="drop",
                     subject_id=world.drop_id, customer_id=member.customer_id)
        record_event(session, clock=at, type="drop.viewed", subject_type="drop",
                     subject_id=world.drop_id)
        record_event(session, clock=at, type="order.paid", subject_type="order", subject_id=1)
        session.add(DropQueueEntry(drop_id=world.drop_id, customer_id=other.customer_id,
                                   sort_key=0.5, joined_at=day + timedelta(days=2)))
        session.add(DropWaitlistEntry(drop_id=world.drop_id, customer_id=member.customer_id,
                                      variant_id=world.variant_ids[0], quantity=1,
                                      status=WaitlistStatus.waiting,
                                      joined_at=day + timedelta(days=2)))
        session.flush()
        touches = signals.load_touches(session, since=day - timedelta(days=1),
                                       until=day + timedelta(days=3))
        sessions = session.query(CustomerSession).count()

    kinds = sorted((t.kind, t.segment) for t in touches)
    assert sessions == 2
    assert kinds == sorted([
        ("page_view", "seasonal"), ("page_view", "anonymous"),  # order.paid is not attention
        ("sign_in", "seasonal"), ("sign_in", "non-member"),
        ("waiting_room", "non-member"), ("waitlist", "seasonal")])

    series = signals.daily_counts(touches, start=day.date(), end=(day + timedelta(days=2)).date())
    assert series.counts.tolist() == [2, 2, 2]
    members_only = signals.daily_counts(touches, start=day.date(),
                                        end=(day + timedelta(days=2)).date(), segment="seasonal")
    assert members_only.counts.tolist() == [1, 1, 1]
    assert members_only.by_kind["waitlist"].tolist() == [0, 0, 1]


def _membership(customer_id: int, tier_id: int, started):  # what a live membership needs
    return {"customer_id": customer_id, "live_customer_id": customer_id, "tier_id": tier_id,
            "status": "active", "billing_anchor": started, "current_period_start": started,
            "current_period_end": started + timedelta(days=60), "started_at": started,
            "segment": "seasonal", "updated_at": started}
