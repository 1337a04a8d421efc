"""Crashes of a real server process (SIGKILL at a failpoint, ``dropline.failpoints``) on the
Redis gate: a purchase killed between the gate's take and its order gives its units and its
admission back once its lease lapses, and its retry buys once; a worker killed between the
charge and the settle is settled by the recovery job, once, without a second charge.

PostgreSQL and Redis only (the gate's engine); the database path's recovery is tested in
tests/orders/test_recovery.py."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from sqlalchemy import func, select

from dropline.bootstrap import build_services
from dropline.clock import FrozenClock
from dropline.drops import waiting_room
from dropline.drops.jobs import reclaim_drops
from dropline.drops.models import DropBuyer, DropHold
from dropline.drops.service import get_drop
from dropline.events.models import DomainEvent
from dropline.failpoints import AFTER_CHARGE, AFTER_TAKE
from dropline.orders.jobs import RECOVERY_GRACE_SECONDS
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import LocalProviderCharge, Payment, PaymentStatus
from dropline.recovery import recover_payments
from dropline.security import token_digest
from dropline.web.scheduler import BackgroundWorker
from tests.drops.builders import REDIS_URL, LeadTimes, make_drop
from tests.drops.processes import PREFIX, server_process, wait_for
from tests.drops.servers import serve_gated
from tests.drops.test_gate import buy, shopper_token

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="the Redis gate runs on PostgreSQL only (set DROPLINE_TEST_DATABASE_URL)")

LEASE_SECONDS = 5


@pytest.fixture
def now_clock() -> FrozenClock:
    """The wall clock's now, frozen: the server process runs on the real clock."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def later(seconds: float) -> FrozenClock:
    """A clock past the server process's own now by ``seconds``."""
    return FrozenClock(datetime.now(UTC) + timedelta(seconds=seconds))


@pytest.fixture
def drop_keys(redis_client: redis.Redis):
    """Removes the gate keys of the drops a test names (server processes use the default
    prefix, and drop ids restart with every test)."""
    drops: list[int] = []

    def clear() -> None:
        for drop_id in drops:
            keys = list(redis_client.scan_iter(match=f"{PREFIX}d:{drop_id}:*"))
            if keys:
                redis_client.delete(*keys)

    def name(drop_id: int) -> int:
        drops.append(drop_id)
        clear()
        return drop_id

    yield name
    clear()


def gate(redis_client: redis.Redis, drop_id: int, customer_id: int) -> dict[str, object]:
    base = f"{PREFIX}d:{drop_id}:"
    left = sum(int(v) for v in redis_client.hgetall(base + "left").values())
    return {"left": left, "count": int(redis_client.hget(base + "buyers", customer_id) or 0),
            "token": int(redis_client.hget(base + "tok", customer_id) or 0),
            "leases": redis_client.zcard(base + "leases")}


def in_background(request) -> threading.Thread:
    """Sends a request whose server will be killed mid-way (its answer is a broken connection)."""
    def send() -> None:
        try:
            request()
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def orders_of(db) -> list[tuple[OrderStatus, str]]:
    with db.transaction() as session:
        return list(session.execute(select(Order.status, Order.checkout_reference)))


def charges(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(LocalProviderCharge))


def test_a_purchase_killed_after_the_take_gives_units_and_admission_back_and_its_retry_buys_once(
        db, now_clock, settings, redis_client, database_url, drop_keys):
    # given a queued drop, a shopper admitted with a token, and a server process that stops
    # after the gate takes the purchase's units, before the order is written
    world = make_drop(db, now_clock, cap=4, limit=2, queue=True)
    drop_keys(world.drop_id)
    customer_id, token = shopper_token(db, now_clock)
    with db.transaction() as session:
        drop = get_drop(session, world.drop_id)
        waiting_room.join_queue(session, clock=now_clock, drop=drop, customer_id=customer_id)
        admission = waiting_room.issue_admission(
            session, clock=now_clock, secret="test-secret", drop=drop, customer_id=customer_id,
            session_digest=token_digest(token), early_access=LeadTimes()).token

    def purchase(server):
        return buy(server, token, world.variant_ids[0], quantity=2, key="killed-key",
                   admission=admission, drop_id=world.drop_id)

    with server_process(database_url, DROPLINE_TESTING_FAILPOINT=AFTER_TAKE,
                        DROPLINE_DROPS_LEASE_SECONDS=str(LEASE_SECONDS)) as victim:
        request = in_background(lambda: purchase(victim))
        wait_for(lambda: gate(redis_client, world.drop_id, customer_id)["leases"] == 1,
                 what="the gate's take", alive=victim.process)
        # when the worker is killed between the take and the order
        victim.kill()
    request.join(timeout=30)

    # then the crash left the units, the count and the admission taken in Redis only
    assert gate(redis_client, world.drop_id, customer_id) == {
        "left": 2, "count": 2, "token": 1, "leases": 1}
    assert orders_of(db) == []
    # and once the lease lapses they come back by themselves (the drops job's sweep)
    reclaim_drops(db, clock=later(LEASE_SECONDS + 1), redis_url=REDIS_URL)
    assert gate(redis_client, world.drop_id, customer_id) == {
        "left": 4, "count": 0, "token": 0, "leases": 0}

    # and the retry with the same key and token buys, once
    with serve_gated(db, later(LEASE_SECONDS + 1), settings, redis_client,
                     prefix=PREFIX) as server:
        retry = purchase(server)
        replay = purchase(server)
    assert retry.status_code == 201, retry.text
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == retry.json()["id"]
    assert [status for status, _ in orders_of(db)] == [OrderStatus.paid]
    assert charges(db) == 1
    with db.transaction() as session:
        assert session.get(DropBuyer, (world.drop_id, customer_id)).units == 2
    assert gate(redis_client, world.drop_id, customer_id) == {
        "left": 2, "count": 2, "token": 1, "leases": 0}


def test_the_retry_itself_reclaims_a_lapsed_lease_without_any_job(
        db, now_clock, settings, redis_client, database_url, drop_keys):
    # given a purchase killed after the take (no queue: the per-person limit is what would
    # lock the shopper out)
    world = make_drop(db, now_clock, cap=4, limit=2)
    drop_keys(world.drop_id)
    customer_id, token = shopper_token(db, now_clock)
    with server_process(database_url, DROPLINE_TESTING_FAILPOINT=AFTER_TAKE,
                        DROPLINE_DROPS_LEASE_SECONDS=str(LEASE_SECONDS)) as victim:
        request = in_background(lambda: buy(victim, token, world.variant_ids[0], quantity=2,
                                            key="k", drop_id=world.drop_id))
        wait_for(lambda: gate(redis_client, world.drop_id, customer_id)["leases"] == 1,
                 what="the gate's take", alive=victim.process)
        victim.kill()
    request.join(timeout=30)

    # when the same key is retried once the lease has lapsed
    with serve_gated(db, later(LEASE_SECONDS + 1), settings, redis_client,
                     prefix=PREFIX) as server:
        retry = buy(server, token, world.variant_ids[0], quantity=2, key="k",
                    drop_id=world.drop_id)

    # then it starts afresh: one paid order, the limit counted once
    assert retry.status_code == 201, retry.text
    assert [status for status, _ in orders_of(db)] == [OrderStatus.paid]
    assert gate(redis_client, world.drop_id, customer_id) == {
        "left": 2, "count": 2, "token": 0, "leases": 0}


def test_a_worker_killed_between_charge_and_settle_is_settled_once_by_the_recovery_job(
        db, now_clock, settings, redis_client, database_url, drop_keys):
    # given a server process that stops after charging a batch, before settling it
    world = make_drop(db, now_clock, cap=4, limit=2)
    drop_keys(world.drop_id)
    customer_id, token = shopper_token(db, now_clock)
    with server_process(database_url, DROPLINE_TESTING_FAILPOINT=AFTER_CHARGE) as victim:
        request = in_background(lambda: buy(victim, token, world.variant_ids[0], quantity=2,
                                            key="charged", drop_id=world.drop_id))
        wait_for(lambda: charges(db) == 1, what="the charge", alive=victim.process)
        # when the worker is killed between the charge and the settle
        victim.kill()
    request.join(timeout=30)
    assert [status for status, _ in orders_of(db)] == [OrderStatus.pending_payment]

    # then the worker's jobs pass (the recovery job among them) settles it: paid, once
    services = build_services(settings, clock=later(RECOVERY_GRACE_SECONDS + 1), db=db)
    BackgroundWorker(services).run_domain_jobs()
    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        payment = session.scalars(select(Payment)).one()
        assert (order.status, payment.status) == (OrderStatus.paid, PaymentStatus.succeeded)
        assert session.scalar(select(DropHold.order_id)) == order.id
        settled_at = payment.updated_at
        events = session.scalar(select(func.count()).select_from(DomainEvent))
    assert charges(db) == 1  # looked up, never charged again

    # and a second pass changes nothing
    again = recover_payments(db, clock=later(RECOVERY_GRACE_SECONDS + 1),
                             provider=services.payments, policy=services.checkout,
                             redis_url=REDIS_URL)
    assert (again.looked_up, again.paid, again.failed) == (0, 0, 0)
    with db.transaction() as session:
        assert session.scalars(select(Payment)).one().updated_at == settled_at
        assert session.scalar(select(func.count()).select_from(DomainEvent)) == events

    # and the shopper's retry with the same key gets that order
    with serve_gated(db, later(RECOVERY_GRACE_SECONDS + 1), settings, redis_client,
                     prefix=PREFIX) as server:
        retry = buy(server, token, world.variant_ids[0], quantity=2, key="charged",
                    drop_id=world.drop_id)
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == order.id and retry.json()["status"] == "paid"
    assert charges(db) == 1
    assert gate(redis_client, world.drop_id, customer_id)["left"] == 2
