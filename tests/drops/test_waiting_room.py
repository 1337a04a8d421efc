"""The waiting room's places and admission times, on the database (both engines)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from dropline.drops import waiting_room
from dropline.drops.errors import NotAdmittedYet
from dropline.drops.models import DropQueueEntry
from dropline.drops.service import get_drop
from tests.drops.builders import LeadTimes, make_drop, make_shopper


def test_places_follow_the_sort_key_then_the_order_of_joining_on_a_tie(db, clock):
    world = make_drop(db, clock, queue=True, starts_in=10)
    shoppers = [make_shopper(db, clock) for _ in range(4)]
    with db.transaction() as session:
        drop = get_drop(session, world.drop_id)
        entries = [waiting_room.join_queue(session, clock=clock, drop=drop,
                                           customer_id=s.customer_id) for s in shoppers]
        # Two share a key (joined in the same instant): the one who joined first goes first.
        for entry, key in zip(entries, (0.7, 0.2, 0.5, 0.5), strict=True):
            session.execute(update(DropQueueEntry).where(DropQueueEntry.id == entry.id)
                            .values(sort_key=key))
    with db.transaction() as session:
        drop = get_drop(session, world.drop_id)
        places = [waiting_room.queue_status(session, clock=clock, drop=drop,
                                            customer_id=s.customer_id,
                                            early_access=LeadTimes()).position
                  for s in shoppers]
    assert places == [4, 1, 2, 3]


def test_a_token_is_refused_until_the_rate_reaches_the_shoppers_place(db, clock):
    world = make_drop(db, clock, queue=True, per_minute=60)
    shoppers = [make_shopper(db, clock) for _ in range(3)]
    with db.transaction() as session:
        drop = get_drop(session, world.drop_id)
        for s in shoppers:
            waiting_room.join_queue(session, clock=clock, drop=drop, customer_id=s.customer_id)
        order = sorted(shoppers, key=lambda s: waiting_room.queue_status(
            session, clock=clock, drop=drop, customer_id=s.customer_id,
            early_access=LeadTimes()).position)
    last = order[-1]
    with db.transaction() as session, pytest.raises(NotAdmittedYet) as refused:
        waiting_room.issue_admission(session, clock=clock, secret="s", drop=get_drop(
            session, world.drop_id), customer_id=last.customer_id,
            session_digest=last.session_digest, early_access=LeadTimes())
    assert refused.value.extensions["position"] == 3
    with db.transaction() as session:
        issued = waiting_room.issue_admission(
            session, clock=clock, secret="s", drop=get_drop(session, world.drop_id),
            customer_id=order[0].customer_id, session_digest=order[0].session_digest,
            early_access=LeadTimes())
    assert issued.token.startswith("v1.")
