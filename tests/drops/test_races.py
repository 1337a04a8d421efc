"""Races with real concurrent transactions (threads, one connection each): they interleave for
real on PostgreSQL; SQLite serialises writers and the same invariants hold.

Invariants: units sold never exceed the cap; each paid order exists exactly once per attempt;
per-person limits hold across parallel requests; lapsed holds' units come back exactly once;
an admission token admits once."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.drops import flows, rules, service, waiting_room
from dropline.drops.models import DropBuyer, DropHold, DropQueueEntry, DropSlot, HoldStatus
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import LocalProviderCharge
from tests.builders import ADDRESS
from tests.drops.builders import CARD, make_drop, make_shopper
from tests.orders.test_races import race

Line = service.HoldLine


def _purchase(db, clock, settings, provider, world, shopper, reference, quantity=1, token=None):
    return flows.purchase(db, clock=clock, settings=settings, provider=provider,
                          drop_id=world.drop_id, shopper=shopper,
                          lines=[Line(world.variant_ids[0], quantity)], admission_token=token,
                          card=CARD, shipping_address=ADDRESS, checkout_reference=reference)


def _sold_and_left(db, drop_id):
    with db.transaction() as session:
        sold = session.scalar(select(func.coalesce(func.sum(OrderLine.quantity), 0))
                              .join(Order, Order.id == OrderLine.order_id)
                              .where(Order.status == OrderStatus.paid))
        left = session.scalar(select(func.sum(DropSlot.remaining))
                              .where(DropSlot.drop_id == drop_id))
        charges = session.scalar(select(func.count()).select_from(LocalProviderCharge))
        paid = session.scalar(select(func.count()).select_from(Order)
                              .where(Order.status == OrderStatus.paid))
        return sold, left, charges, paid


def test_a_crowd_buying_a_drop_never_oversells_and_pays_each_order_once(db, clock, settings):
    world = make_drop(db, clock, cap=15, limit=2, slots=4)
    shoppers = [make_shopper(db, clock) for _ in range(24)]
    provider = LocalCardProvider(db.sessions, clock)

    results = race(24, lambda i: _purchase(db, clock, settings, provider, world, shoppers[i],
                                           f"crowd-{i}", quantity=1 + i % 2))

    outcomes = Counter(type(r).__name__ for r in results)
    assert set(outcomes) <= {"int", "SoldOut"}, results
    sold, left, charges, paid = _sold_and_left(db, world.drop_id)
    assert sold + left == 15 and left <= 1  # a 1-unit remainder may not fit a 2-unit order
    assert paid == outcomes["int"] == charges


def test_ten_shoppers_buying_two_each_of_a_twenty_unit_drop_all_succeed(db, clock, settings):
    # 20 units over the default slots are 20 one-unit rows: every take is split over two rows
    # that other takes want too.
    world = make_drop(db, clock, cap=20, limit=2, slots=rules.DEFAULT_SLOTS)
    shoppers = [make_shopper(db, clock) for _ in range(10)]
    provider = LocalCardProvider(db.sessions, clock)

    results = race(10, lambda i: _purchase(db, clock, settings, provider, world, shoppers[i],
                                           f"pair-{i}", quantity=2))

    assert all(isinstance(r, int) for r in results), results
    assert _sold_and_left(db, world.drop_id) == (20, 0, 10, 10)


def test_a_crowd_is_told_sold_out_only_once_the_units_it_asks_for_are_gone(db, clock,
                                                                          settings):
    world = make_drop(db, clock, cap=61, limit=2, slots=64)  # 61 one-unit rows: splits
    quantities = [1 + i % 2 for i in range(44)]  # 66 units asked for
    shoppers = [make_shopper(db, clock) for _ in quantities]
    provider = LocalCardProvider(db.sessions, clock)

    results = race(len(quantities), lambda i: _purchase(
        db, clock, settings, provider, world, shoppers[i], f"mixed-{i}", quantity=quantities[i]))

    outcomes = Counter(type(r).__name__ for r in results)
    assert set(outcomes) == {"int", "SoldOut"}, results
    sold, left, charges, paid = _sold_and_left(db, world.drop_id)
    assert sold + left == 61  # oversold 0
    # Units only ever went down in this race, so what is left now was left at every refusal:
    # each refused shopper asked for more than that (undersold 0).
    refused = [q for q, r in zip(quantities, results, strict=True) if not isinstance(r, int)]
    assert left < min(refused)
    assert paid == outcomes["int"] == charges


def test_the_same_purchase_attempt_racing_itself_makes_one_order_and_one_charge(db, clock,
                                                                                settings):
    world = make_drop(db, clock, cap=10, limit=2)
    shopper = make_shopper(db, clock)
    provider = LocalCardProvider(db.sessions, clock)

    results = race(6, lambda i: _purchase(db, clock, settings, provider, world, shopper,
                                          "double-click"))

    # The losers either find the order by its reference or meet the winner's uncommitted hold.
    assert len({r for r in results if isinstance(r, int)}) == 1, results
    assert {type(r).__name__ for r in results} <= {"int", "HoldAlreadyActive"}, results
    sold, left, charges, paid = _sold_and_left(db, world.drop_id)
    assert (sold, left, charges, paid) == (1, 9, 1, 1)


def test_the_per_person_limit_holds_across_parallel_requests(db, clock, settings):
    world = make_drop(db, clock, cap=50, limit=3)
    shopper = make_shopper(db, clock)
    provider = LocalCardProvider(db.sessions, clock)

    results = race(8, lambda i: _purchase(db, clock, settings, provider, world, shopper,
                                          f"greedy-{i}"))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes["int"] == 3, results
    assert set(outcomes) <= {"int", "LimitReached", "HoldAlreadyActive"}
    with db.transaction() as session:
        assert session.get(DropBuyer, (world.drop_id, shopper.customer_id)).units == 3
    assert _sold_and_left(db, world.drop_id)[:2] == (3, 47)


def test_lapsed_holds_come_back_exactly_once_when_a_crowd_finds_the_drop_empty(db, clock,
                                                                               settings):
    world = make_drop(db, clock, cap=6, limit=1, hold_ttl=60, slots=3)
    first_wave = [make_shopper(db, clock) for _ in range(6)]
    for shopper in first_wave:
        flows.place_hold(db, clock=clock, settings=settings, drop_id=world.drop_id,
                         shopper=shopper, lines=[Line(world.variant_ids[0], 1)],
                         admission_token=None)
    clock.advance(seconds=61)
    second_wave = [make_shopper(db, clock) for _ in range(12)]

    results = race(12, lambda i: flows.place_hold(
        db, clock=clock, settings=settings, drop_id=world.drop_id, shopper=second_wave[i],
        lines=[Line(world.variant_ids[0], 1)], admission_token=None))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"DropHold": 6, "SoldOut": 6}, results
    with db.transaction() as session:
        statuses = Counter(session.scalars(select(DropHold.status)))
        assert statuses == {HoldStatus.expired: 6, HoldStatus.active: 6}
        assert session.scalar(select(func.sum(DropSlot.remaining))) == 0
        assert session.scalar(select(func.sum(DropBuyer.units))) == 6


def test_an_admission_token_admits_once_even_when_replayed_in_parallel(db, clock, settings):
    world = make_drop(db, clock, cap=10, limit=1, queue=True)
    shopper = make_shopper(db, clock)
    provider = LocalCardProvider(db.sessions, clock)
    with db.transaction() as session:
        drop = service.get_drop(session, world.drop_id)
        waiting_room.join_queue(session, clock=clock, drop=drop, customer_id=shopper.customer_id)
        token = waiting_room.issue_admission(
            session, clock=clock, secret=settings.web.secret_key, drop=drop,
            customer_id=shopper.customer_id, session_digest=shopper.session_digest,
            early_access=lambda *a, **k: 0).token

    results = race(6, lambda i: _purchase(db, clock, settings, provider, world, shopper,
                                          f"replay-{i}", token=token))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes["int"] == 1, results
    assert set(outcomes) <= {"int", "AdmissionRefused", "HoldAlreadyActive"}, results
    with db.transaction() as session:
        assert session.scalar(select(DropQueueEntry.tokens_used)) == 1
    assert _sold_and_left(db, world.drop_id)[:2] == (1, 9)
