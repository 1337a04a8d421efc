"""The database path's batched purchase (``drops.batched``): the group commit itself, and the
drop's invariants under real concurrent requests on PostgreSQL (threads, one connection each),
through what the endpoint runs: the batch first, ``flows.purchase`` for what it leaves.

The rules table (``test_purchase_rules.py``) runs the endpoint on PostgreSQL too; these are the
races."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.drops import batched, flows, rules, service, waiting_room
from dropline.drops.crowd.writer import Job
from dropline.drops.models import DropBuyer, DropHold, DropQueueEntry, DropSlot
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import LocalProviderCharge
from tests.builders import ADDRESS
from tests.drops.builders import CARD, make_drop, make_shopper
from tests.orders.test_races import race

Line = service.HoldLine
ON_POSTGRESQL = (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql")
postgresql_only = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="the batch writer is PostgreSQL's (set DROPLINE_TEST_DATABASE_URL)")


# --- the group commit ----------------------------------------------------------------------------


def _job(n: int) -> Job:
    return Job(drop_id=1, customer_id=n, lines=[(1, 1)], pools={0: 1}, card=CARD,
               shipping_address=ADDRESS, reference=f"job-{n}")


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_jobs_arriving_while_a_batch_is_written_go_together_in_the_next_one():
    release = threading.Event()
    batches: list[list[str]] = []

    def write(jobs: list[Job]) -> None:
        batches.append([job.reference for job in jobs])
        if len(batches) == 1:
            release.wait(10)  # the first batch is being written while the others arrive
        for job in jobs:
            job.outcome = ("paid", job.reference)

    batcher = batched.PurchaseBatcher(write, parallel=1)
    jobs = [_job(n) for n in range(6)]
    first = threading.Thread(target=batcher.submit, args=(jobs[0],))
    first.start()
    _until(lambda: batches, "the first batch")
    others = [threading.Thread(target=batcher.submit, args=(job,)) for job in jobs[1:]]
    for thread in others:
        thread.start()
    _until(lambda: len(batcher._waiting) == 5, "five waiting jobs")
    release.set()
    for thread in [first, *others]:
        thread.join(10)

    assert batches[0] == ["job-0"]  # a lone purchase is written at once
    assert sorted(batches[1]) == [f"job-{n}" for n in range(1, 6)] and len(batches) == 2
    assert all(job.outcome == ("paid", job.reference) for job in jobs)


def test_a_failed_batch_raises_its_error_to_every_caller_of_that_batch():
    def write(jobs: list[Job]) -> None:
        raise RuntimeError("the database went away")

    batcher = batched.PurchaseBatcher(write)
    results = race(4, lambda i: batcher.submit(_job(i)))

    assert [type(r).__name__ for r in results] == ["RuntimeError"] * 4
    assert batcher._writing == 0 and batcher._waiting == []


# --- the drop's invariants through the batched path ---------------------------------------------


def _buy(db, clock, settings, provider, batcher, world, shopper, reference, quantity=1,
         token=None) -> str:
    """What the endpoint runs: the batch, else ``flows.purchase``; "paid" or raises."""
    lines = [Line(world.variant_ids[0], quantity)]
    paid = batched.purchase(db, clock=clock, settings=settings, batcher=batcher,
                            drop_id=world.drop_id, shopper=shopper, lines=lines,
                            admission_token=token, card=CARD, shipping_address=ADDRESS,
                            checkout_reference=reference,
                            early_access=service.membership_early_access)
    if paid is None:
        flows.purchase(db, clock=clock, settings=settings, provider=provider,
                       drop_id=world.drop_id, shopper=shopper, lines=lines,
                       admission_token=token, card=CARD, shipping_address=ADDRESS,
                       checkout_reference=reference)
    return "paid"


@pytest.fixture
def buying(db, clock, settings):
    provider = LocalCardProvider(db.sessions, clock)
    batcher = batched.batcher_for(db, clock=clock, settings=settings, provider=provider)
    return lambda *args, **kwargs: _buy(db, clock, settings, provider, batcher, *args, **kwargs)


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


@postgresql_only
def test_ten_shoppers_buying_two_each_of_a_twenty_unit_drop_all_succeed(db, clock, buying):
    world = make_drop(db, clock, cap=20, limit=2, slots=rules.DEFAULT_SLOTS)
    shoppers = [make_shopper(db, clock) for _ in range(10)]

    results = race(10, lambda i: buying(world, shoppers[i], f"pair-{i}", quantity=2))

    assert results == ["paid"] * 10, results
    assert _sold_and_left(db, world.drop_id) == (20, 0, 10, 10)


@postgresql_only
def test_a_crowd_is_told_sold_out_only_once_the_units_it_asks_for_are_gone(db, clock, buying):
    world = make_drop(db, clock, cap=61, limit=2, slots=64)  # 61 one-unit rows: splits
    quantities = [1 + i % 2 for i in range(44)]  # 66 units asked for
    shoppers = [make_shopper(db, clock) for _ in quantities]

    results = race(len(quantities), lambda i: buying(world, shoppers[i], f"mixed-{i}",
                                                     quantity=quantities[i]))

    outcomes = Counter(r if r == "paid" else type(r).__name__ for r in results)
    assert set(outcomes) == {"paid", "SoldOut"}, [str(r)[:300] for r in results if r != "paid" and type(r).__name__ != "SoldOut"]
    sold, left, charges, paid = _sold_and_left(db, world.drop_id)
    assert sold + left == 61  # oversold 0
    # Units only went down in this race: each refused shopper asked for more than is left.
    refused = [q for q, r in zip(quantities, results, strict=True) if r != "paid"]
    assert left < min(refused)
    assert paid == outcomes["paid"] == charges
    with db.transaction() as session:  # every paid order's units recorded where they came from
        assert session.scalar(select(func.sum(DropHold.quantity))) == sold


@postgresql_only
def test_the_per_person_limit_holds_across_parallel_requests(db, clock, buying):
    world = make_drop(db, clock, cap=50, limit=3)
    shopper = make_shopper(db, clock)

    results = race(8, lambda i: buying(world, shopper, f"greedy-{i}"))

    outcomes = Counter(r if r == "paid" else type(r).__name__ for r in results)
    assert outcomes["paid"] == 3, results
    assert set(outcomes) <= {"paid", "LimitReached", "HoldAlreadyActive"}
    with db.transaction() as session:
        assert session.get(DropBuyer, (world.drop_id, shopper.customer_id)).units == 3
    assert _sold_and_left(db, world.drop_id)[:2] == (3, 47)


@postgresql_only
def test_the_same_attempt_racing_itself_makes_one_order_and_one_charge(db, clock, buying):
    world = make_drop(db, clock, cap=10, limit=2)
    shopper = make_shopper(db, clock)

    results = race(6, lambda i: buying(world, shopper, "double-click"))

    assert {r if r == "paid" else type(r).__name__ for r in results} <= {
        "paid", "HoldAlreadyActive", "InvalidState"}, results
    assert _sold_and_left(db, world.drop_id) == (1, 9, 1, 1)


@postgresql_only
def test_an_admission_token_admits_once_even_when_replayed_in_parallel(db, clock, settings,
                                                                       buying):
    world = make_drop(db, clock, cap=10, limit=1, queue=True)
    shopper = make_shopper(db, clock)
    with db.transaction() as session:
        drop = service.get_drop(session, world.drop_id)
        waiting_room.join_queue(session, clock=clock, drop=drop, customer_id=shopper.customer_id)
        token = waiting_room.issue_admission(
            session, clock=clock, secret=settings.web.secret_key, drop=drop,
            customer_id=shopper.customer_id, session_digest=shopper.session_digest,
            early_access=lambda *a, **k: 0).token

    results = race(6, lambda i: buying(world, shopper, f"replay-{i}", token=token))

    outcomes = Counter(r if r == "paid" else type(r).__name__ for r in results)
    assert outcomes["paid"] == 1, results
    assert set(outcomes) <= {"paid", "AdmissionRefused", "HoldAlreadyActive", "LimitReached"}
    with db.transaction() as session:
        assert session.scalar(select(DropQueueEntry.tokens_used)) == 1
    assert _sold_and_left(db, world.drop_id)[:2] == (1, 9)
