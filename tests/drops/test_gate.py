"""The Redis gate and batched writes (``drops.crowd``: the gate, the batch writer, the worker state), raced
for real: a uvicorn server in a thread on PostgreSQL with Redis (DB 3, a prefix of its own per
test), shoppers as concurrent HTTP clients on threads.

PostgreSQL only: the gate's guarded batch statements are PostgreSQL's (on SQLite the purchase
endpoint runs the database path, tested in test_races.py). Redis must be reachable: these
tests fail, not skip, without it (CI runs Redis)."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import redis
from sqlalchemy import func, select

from dropline.customers.models import Customer
from dropline.customers.service import start_session
from dropline.drops import waiting_room
from dropline.drops.crowd.gate import SyncGate, reconcile
from dropline.drops.models import DropBuyer, DropSlot
from dropline.drops.service import get_drop
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import LocalProviderCharge
from dropline.security import token_digest
from tests.builders import ADDRESS, DECLINED_PM, GOOD_PM
from tests.drops.builders import REDIS_URL, LeadTimes, make_drop
from tests.drops.servers import Server, serve_gated
from tests.orders.test_races import race

CARD = GOOD_PM
DECLINED = DECLINED_PM

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="the Redis gate runs on PostgreSQL only (set DROPLINE_TEST_DATABASE_URL)")


@pytest.fixture
def gated(db, clock, settings, redis_client) -> Iterator[Server]:
    with serve_gated(db, clock, settings, redis_client) as server:
        yield server


def shopper_token(db, clock) -> tuple[int, str]:
    with db.transaction() as session:
        customer = Customer(email=f"g-{uuid.uuid4().hex[:10]}@example.com", password_hash="x",
                            created_at=clock.now())
        session.add(customer)
        session.flush()
        return customer.id, start_session(session, clock=clock, customer=customer, days=1)


def buy(server: Server, token: str, variant_id: int, *, quantity: int = 1,
        key: str | None = None, card: str = CARD,
        admission: str | None = None, drop_id: int) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30, cookies={"dl_session": token}) as client:
        return client.post(
            f"/api/v1/drops/{drop_id}/purchase",
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
            json={"lines": [{"variant_id": variant_id, "quantity": quantity}],
                  "admission_token": admission, "payment_method": card,
                  "shipping_address": ADDRESS})


def facts(db, drop_id: int) -> dict[str, int]:
    with db.transaction() as session:
        return {
            "sold": session.scalar(select(func.coalesce(func.sum(OrderLine.quantity), 0))
                                   .join(Order, Order.id == OrderLine.order_id)
                                   .where(Order.status == OrderStatus.paid)),
            "paid": session.scalar(select(func.count()).select_from(Order)
                                   .where(Order.status == OrderStatus.paid)),
            "left": session.scalar(select(func.sum(DropSlot.remaining))
                                   .where(DropSlot.drop_id == drop_id)),
            "charges": session.scalar(select(func.count()).select_from(LocalProviderCharge)
                                      .where(LocalProviderCharge.outcome == "succeeded")),
        }


def redis_left(server: Server, client: redis.Redis, drop_id: int) -> int:
    values = client.hgetall(f"{server.prefix}d:{drop_id}:left")  # type: ignore[attr-defined]
    return sum(int(v) for v in values.values())


def test_a_gated_crowd_never_buys_more_than_the_cap_and_pays_each_order_once(
        db, clock, gated, redis_client):
    world = make_drop(db, clock, cap=15, limit=2, slots=4)
    tokens = [shopper_token(db, clock)[1] for _ in range(24)]

    responses = race(24, lambda i: buy(gated, tokens[i], world.variant_ids[0],
                                       quantity=1 + i % 2, drop_id=world.drop_id))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code >= 500]
    after = facts(db, world.drop_id)
    assert after["sold"] + after["left"] == 15 and after["left"] <= 1
    assert after["paid"] == statuses[201] == after["charges"]
    assert redis_left(gated, redis_client, world.drop_id) == after["left"]
    assert all(r.json()["status"] == "paid" for r in responses if r.status_code == 201)


def test_the_per_person_limit_holds_across_parallel_gated_requests(db, clock, gated):
    world = make_drop(db, clock, cap=50, limit=3)
    customer_id, token = shopper_token(db, clock)

    responses = race(8, lambda i: buy(gated, token, world.variant_ids[0],
                                      drop_id=world.drop_id))

    assert Counter(r.status_code for r in responses) == {201: 3, 409: 5}
    assert {r.json()["type"].rsplit("/", 1)[1] for r in responses if r.status_code == 409} \
        == {"per-person-limit"}
    with db.transaction() as session:
        assert session.get(DropBuyer, (world.drop_id, customer_id)).units == 3
    assert facts(db, world.drop_id)["sold"] == 3


def test_one_idempotency_key_replayed_concurrently_makes_one_paid_order(db, clock, gated):
    world = make_drop(db, clock, cap=10, limit=2)
    _, token = shopper_token(db, clock)

    responses = race(6, lambda i: buy(gated, token, world.variant_ids[0], key="double-click",
                                      drop_id=world.drop_id))

    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert facts(db, world.drop_id) == {"sold": 1, "paid": 1, "left": 9, "charges": 1}


def test_an_admission_token_admits_once_even_when_replayed_in_parallel(db, clock, gated):
    world = make_drop(db, clock, cap=10, limit=2, queue=True)
    customer_id, token = shopper_token(db, clock)
    with db.transaction() as session:
        drop = get_drop(session, world.drop_id)
        waiting_room.join_queue(session, clock=clock, drop=drop, customer_id=customer_id)
        issued = waiting_room.issue_admission(
            session, clock=clock, secret="test-secret", drop=drop, customer_id=customer_id,
            session_digest=token_digest(token), early_access=LeadTimes())

    responses = race(5, lambda i: buy(gated, token, world.variant_ids[0], admission=issued.token,
                                      drop_id=world.drop_id))

    assert Counter(r.status_code for r in responses) == {201: 1, 403: 4}
    assert facts(db, world.drop_id)["sold"] == 1


def test_an_admission_builds_the_gate_keys_before_the_purchase_needs_them(
        db, clock, gated, redis_client):
    world = make_drop(db, clock, cap=10, limit=2, queue=True)
    customer_id, token = shopper_token(db, clock)
    with db.transaction() as session:
        waiting_room.join_queue(session, clock=clock, drop=get_drop(session, world.drop_id),
                                customer_id=customer_id)
    meta = f"{gated.prefix}d:{world.drop_id}:meta"
    assert not redis_client.exists(meta)

    with httpx.Client(base_url=gated.url, timeout=30, cookies={"dl_session": token}) as client:
        admitted = client.post(f"/api/v1/drops/{world.drop_id}/admission")

    assert admitted.status_code == 200, admitted.text
    assert redis_client.exists(meta)
    assert redis_left(gated, redis_client, world.drop_id) == 10
    assert buy(gated, token, world.variant_ids[0], quantity=2, admission=admitted.json()["token"],
               drop_id=world.drop_id).status_code == 201
    assert redis_left(gated, redis_client, world.drop_id) == 8


def test_early_access_refuses_non_members_before_their_window(db, clock, gated):
    world = make_drop(db, clock, cap=10, limit=2, starts_in=10, early_access_minutes=30)
    member_id, member = shopper_token(db, clock)
    _, stranger = shopper_token(db, clock)
    gated.app.state.drops_early_access = LeadTimes({member_id: 30})

    refused = buy(gated, stranger, world.variant_ids[0], drop_id=world.drop_id)
    bought = buy(gated, member, world.variant_ids[0], drop_id=world.drop_id)

    assert refused.status_code == 409 and refused.json()["type"].endswith("/drop-not-open")
    assert bought.status_code == 201
    assert facts(db, world.drop_id)["sold"] == 1


def test_a_redis_flush_then_reconcile_neither_oversells_nor_loses_units(
        db, clock, gated, redis_client):
    world = make_drop(db, clock, cap=12, limit=2, slots=4)
    tokens = [shopper_token(db, clock)[1] for _ in range(16)]
    first = race(4, lambda i: buy(gated, tokens[i], world.variant_ids[0], quantity=2,
                                  key=f"first-{i}", drop_id=world.drop_id))
    assert [r.status_code for r in first] == [201] * 4
    keys = list(redis_client.scan_iter(match=f"{gated.prefix}*"))
    redis_client.delete(*keys)  # Redis lost everything, idempotency records included

    gate = SyncGate(redis_client, prefix=gated.prefix)
    assert reconcile(db, gate, clock=clock, drop_id=world.drop_id)["left"] == 4
    rest = race(12, lambda i: buy(gated, tokens[4 + i], world.variant_ids[0], quantity=1,
                                  drop_id=world.drop_id))
    # a replay of a purchase paid before the flush is answered from PostgreSQL, not sold again
    replay = buy(gated, tokens[0], world.variant_ids[0], quantity=2, drop_id=world.drop_id,
                 key="first-0")

    assert Counter(r.status_code for r in rest) == {201: 4, 409: 8}
    assert replay.status_code == 201 and replay.json()["id"] == first[0].json()["id"]
    after = facts(db, world.drop_id)
    assert (after["sold"], after["left"]) == (12, 0)
    assert redis_left(gated, redis_client, world.drop_id) == 0


def test_a_declined_card_gives_the_units_back_to_the_drop_and_redis(
        db, clock, gated, redis_client):
    world = make_drop(db, clock, cap=2, limit=2)
    customer_id, token = shopper_token(db, clock)

    declined = buy(gated, token, world.variant_ids[0], quantity=2, card=DECLINED,
                   drop_id=world.drop_id, key="k1")
    replayed = buy(gated, token, world.variant_ids[0], quantity=2, card=DECLINED,
                   drop_id=world.drop_id, key="k1")

    assert declined.status_code == 402 and replayed.status_code == 402
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert facts(db, world.drop_id)["left"] == 2
    assert redis_left(gated, redis_client, world.drop_id) == 2
    with db.transaction() as session:
        assert session.get(DropBuyer, (world.drop_id, customer_id)).units == 0
    paid = buy(gated, token, world.variant_ids[0], quantity=2, drop_id=world.drop_id)
    assert paid.status_code == 201
    assert facts(db, world.drop_id)["sold"] == 2


def test_holds_draw_from_the_gate_and_give_their_units_back_when_they_lapse(
        db, clock, gated, redis_client):
    world = make_drop(db, clock, cap=2, limit=2, hold_ttl=60)
    _, holder = shopper_token(db, clock)
    _, buyer = shopper_token(db, clock)
    buy(gated, buyer, world.variant_ids[0], drop_id=world.drop_id)  # loads the gate: 1 left
    with httpx.Client(base_url=gated.url, cookies={"dl_session": holder}) as client:
        held = client.post(f"/api/v1/drops/{world.drop_id}/holds",
                           json={"lines": [{"variant_id": world.variant_ids[0], "quantity": 1}]})
    assert held.status_code == 201, held.text
    assert redis_left(gated, redis_client, world.drop_id) == 0

    refused = buy(gated, buyer, world.variant_ids[0], drop_id=world.drop_id)
    clock.advance(seconds=61)  # the hold lapses: no sweeper runs
    bought = buy(gated, buyer, world.variant_ids[0], drop_id=world.drop_id)

    assert refused.status_code == 409 and refused.json()["type"].endswith("/sold-out")
    assert bought.status_code == 201, bought.text
    after = facts(db, world.drop_id)
    assert (after["sold"], after["left"]) == (2, 0)
    assert redis_left(gated, redis_client, world.drop_id) == 0


def test_a_released_hold_returns_its_units_to_the_gate(db, clock, gated, redis_client):
    world = make_drop(db, clock, cap=3, limit=3)
    _, holder = shopper_token(db, clock)
    buy(gated, holder, world.variant_ids[0], drop_id=world.drop_id)
    with httpx.Client(base_url=gated.url, cookies={"dl_session": holder}) as client:
        hold = client.post(f"/api/v1/drops/{world.drop_id}/holds",
                           json={"lines": [{"variant_id": world.variant_ids[0], "quantity": 2}]})
        assert redis_left(gated, redis_client, world.drop_id) == 0
        released = client.delete(f"/api/v1/drops/holds/{hold.json()['id']}")

    assert released.status_code == 204
    assert redis_left(gated, redis_client, world.drop_id) == 2
    assert facts(db, world.drop_id)["left"] == 2


def test_the_drops_job_rebuilds_a_drop_whose_gate_keys_are_gone(db, clock, gated,
                                                               redis_client):
    from dropline.drops.jobs import reclaim_drops

    world = make_drop(db, clock, cap=5, limit=2)
    _, token = shopper_token(db, clock)
    assert buy(gated, token, world.variant_ids[0], quantity=2,
               drop_id=world.drop_id).status_code == 201
    redis_client.delete(*redis_client.scan_iter(match=f"{gated.prefix}*"))

    reclaim_drops(db, clock=clock, redis_url=REDIS_URL, redis_prefix=gated.prefix)

    assert redis_left(gated, redis_client, world.drop_id) == 3
    assert redis_client.hget(f"{gated.prefix}d:{world.drop_id}:buyers",
                             str(_customer_of(db, token))) == b"2"


def _customer_of(db, token: str) -> int:
    from dropline.customers.models import CustomerSession

    with db.transaction() as session:
        return session.scalar(select(CustomerSession.customer_id).where(
            CustomerSession.token_hash == token_digest(token)))


def test_a_purchase_still_goes_through_after_redis_lost_its_scripts(db, clock, gated,
                                                                      redis_client):
    # The gate sends EVALSHA without asking first (drops.crowd.gate.take_many): after a Redis
    # restart (here: SCRIPT FLUSH) it must load the script and send the pipeline again.
    world = make_drop(db, clock, cap=5, limit=2)
    _, token = shopper_token(db, clock)
    assert buy(gated, token, world.variant_ids[0], drop_id=world.drop_id).status_code == 201

    redis_client.script_flush()
    response = buy(gated, token, world.variant_ids[0], drop_id=world.drop_id)

    assert response.status_code == 201, response.text
    assert facts(db, world.drop_id)["paid"] == 2


def test_the_fast_lane_refuses_bad_bodies_as_the_api_does_and_changes_nothing(
        db, clock, gated, redis_client):
    world = make_drop(db, clock, cap=5, limit=2)
    _, token = shopper_token(db, clock)
    url = f"{gated.url}/api/v1/drops/{world.drop_id}/purchase"
    with httpx.Client(timeout=30, cookies={"dl_session": token}) as client:
        malformed = client.post(url, content=b"{not json", headers={
            "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"})
        invalid = client.post(url, headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "lines": [{"variant_id": world.variant_ids[0], "quantity": 0}], "payment_method": CARD,
            "shipping_address": ADDRESS})
        keyless = client.post(url, json={
            "lines": [{"variant_id": world.variant_ids[0], "quantity": 1}], "payment_method": CARD,
            "shipping_address": ADDRESS})
        stranger = httpx.post(url, headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "lines": [{"variant_id": world.variant_ids[0], "quantity": 1}], "payment_method": CARD,
            "shipping_address": ADDRESS}, timeout=30)

    assert malformed.status_code == 400
    assert malformed.json()["type"].endswith("/malformed-json")
    assert invalid.status_code == 422
    assert invalid.headers["content-type"].startswith("application/problem+json")
    assert ["body", "lines", 0, "quantity"] in [e["loc"] for e in invalid.json()["errors"]]
    assert keyless.status_code == 422 and "Idempotency-Key" in keyless.json()["detail"]
    assert stranger.status_code == 401
    assert facts(db, world.drop_id) == {"sold": 0, "paid": 0, "left": 5, "charges": 0}


@pytest.fixture
def gated_short_lease(db, clock, settings, redis_client) -> Iterator[Server]:
    with serve_gated(db, clock, settings, redis_client, idempotency_lease_seconds=1) as server:
        yield server


def _idempotency_key_name(server: Server, drop_id: int, customer_id: int, key: str) -> str:
    from dropline.idempotency.service import reference_for

    reference = reference_for(f"customer:{customer_id}", key)
    return f"{server.prefix}d:{drop_id}:i:{reference}"  # type: ignore[attr-defined]


def test_a_replay_stuck_pending_after_a_crash_is_answered_from_postgresql(
        db, clock, gated_short_lease, redis_client):
    # A worker that died after committing the order but before storing its outcome leaves the
    # key pending in Redis. Once the lease lapses, a replay is answered from the order.
    world = make_drop(db, clock, cap=5, limit=2)
    customer_id, token = shopper_token(db, clock)
    first = buy(gated_short_lease, token, world.variant_ids[0], key="crash-1",
                drop_id=world.drop_id)
    assert first.status_code == 201
    name = _idempotency_key_name(gated_short_lease, world.drop_id, customer_id, "crash-1")
    stored = redis_client.get(name).decode()
    redis_client.set(name, "P|" + stored.split("|")[1])  # as the crash left it

    replay = buy(gated_short_lease, token, world.variant_ids[0], key="crash-1",
                 drop_id=world.drop_id)

    assert replay.status_code == 201, replay.text
    assert replay.json()["id"] == first.json()["id"]
    assert facts(db, world.drop_id)["paid"] == 1 == facts(db, world.drop_id)["charges"]
    assert redis_client.get(name).decode().startswith("D|")  # later replays: from Redis


def test_a_replay_stuck_pending_with_no_order_lets_the_retry_start_afresh(
        db, clock, gated_short_lease, redis_client):
    # The worker died before writing anything: the replay is told to retry (409), and the
    # retry buys, once.
    world = make_drop(db, clock, cap=5, limit=2)
    customer_id, token = shopper_token(db, clock)
    name = _idempotency_key_name(gated_short_lease, world.drop_id, customer_id, "crash-2")
    other = buy(gated_short_lease, token, world.variant_ids[0], key="probe",
                drop_id=world.drop_id)  # only to learn this body's fingerprint
    probe = _idempotency_key_name(gated_short_lease, world.drop_id, customer_id, "probe")
    fingerprint = redis_client.get(probe).decode().split("|")[1]
    redis_client.set(name, f"P|{fingerprint}")

    stuck = buy(gated_short_lease, token, world.variant_ids[0], key="crash-2",
                drop_id=world.drop_id)
    retry = buy(gated_short_lease, token, world.variant_ids[0], key="crash-2",
                drop_id=world.drop_id)

    assert other.status_code == 201
    assert stuck.status_code == 409
    assert stuck.json()["type"].endswith("/request-in-flight")
    assert retry.status_code == 201, retry.text
    assert facts(db, world.drop_id)["paid"] == 2 == facts(db, world.drop_id)["charges"]


def test_a_rate_limited_purchase_leaves_its_key_unspent(db, clock, settings, redis_client):
    # given a shopper over the per-minute limit (the gate stores every refusal it decides
    # but this one, which changes on retry, as the database path does not store it either)
    world = make_drop(db, clock, cap=5, limit=5)
    _, token = shopper_token(db, clock)
    variant = world.variant_ids[0]
    with serve_gated(db, clock, settings, redis_client, identity_per_minute=2) as server:
        assert [buy(server, token, variant, drop_id=world.drop_id).status_code
                for _ in range(2)] == [201, 201]
        limited = buy(server, token, variant, key="slow-1", drop_id=world.drop_id)
        clock.advance(seconds=61)  # when the next minute comes and the key is sent again
        again = buy(server, token, variant, key="slow-1", drop_id=world.drop_id)

    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert again.status_code == 201, again.text  # then it buys, as a first answer
    assert "Idempotent-Replayed" not in again.headers
    assert facts(db, world.drop_id)["sold"] == 3


def test_a_gated_order_is_in_the_audit_trail_as_the_database_paths_orders_are(
        db, clock, settings, gated, redis_client):
    from dropline.payments.models import Payment
    from dropline.risk.models import AuditLog

    world = make_drop(db, clock, cap=10, limit=2)
    customer_id, token = shopper_token(db, clock)
    gated_order = buy(gated, token, world.variant_ids[0], quantity=2, drop_id=world.drop_id)
    assert gated_order.status_code == 201
    with serve_gated(db, clock, settings, redis_client, redis_url=None) as database_path:
        _, other = shopper_token(db, clock)
        reference_order = buy(database_path, other, world.variant_ids[0], quantity=2,
                              drop_id=world.drop_id)
    assert reference_order.status_code == 201

    def trail(entity: str, entity_id: int) -> list[AuditLog]:
        with db.transaction() as session:
            return list(session.scalars(select(AuditLog).where(
                AuditLog.entity == entity, AuditLog.entity_id == str(entity_id))
                .order_by(AuditLog.id)))

    def payment_of(order_id: int) -> int:
        with db.transaction() as session:
            return session.scalar(select(Payment.id).where(Payment.order_id == order_id))

    mine, theirs = gated_order.json()["id"], reference_order.json()["id"]
    created, paid = trail("orders", mine)
    assert (created.action, created.actor) == ("create", f"customer:{customer_id}")
    assert set(created.changes) == set(trail("orders", theirs)[0].changes)
    assert created.changes["status"] == [None, "pending-payment"]
    assert created.changes["total_amount"][1] == gated_order.json()["total_amount"]
    assert (paid.action, paid.changes["status"]) == ("update", ["pending-payment", "paid"])
    pay_created, pay_settled = trail("payments", payment_of(mine))
    assert set(pay_created.changes) == set(trail("payments", payment_of(theirs))[0].changes)
    assert "card_fingerprint" not in pay_created.changes
    assert pay_settled.changes["status"] == ["pending", "succeeded"]
