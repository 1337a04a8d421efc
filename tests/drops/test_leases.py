"""The gate's purchase leases, script by script, on Redis alone (no server, no database): a
lapsed lease gives its units, count and admission back once; a lease kept after its order was
written keeps its units even if it had lapsed (a slow but live purchase); a lease returned
after a refusal never gives its units back twice."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from dropline.drops.crowd.gate import SyncGate, TakeRequest, lease_member, reconcile
from dropline.drops.models import SHARED_POOL
from tests.drops.builders import make_drop

DROP = 1
CUSTOMER = 7
NOW = 1_800_000_000_000
LEASE_MS = 30_000


@pytest.fixture
def gate(redis_client: redis.Redis) -> Iterator[SyncGate]:
    prefix = f"dl:lease:{uuid.uuid4().hex[:8]}:"
    gate = SyncGate(redis_client, prefix=prefix)
    k = gate.keys(DROP)
    redis_client.hset(k.meta, mapping={"starts": NOW - 60_000, "ends": NOW + 3_600_000,
                                       "limit": 2})
    redis_client.hset(k.left, mapping={"0": 4})
    yield gate
    keys = list(redis_client.scan_iter(match=f"{prefix}*"))
    if keys:
        redis_client.delete(*keys)


def take(gate: SyncGate, *, key: str, at: int, attempt: str = "a", quantity: int = 2,
         token_n: int = 1) -> tuple[str, str]:
    member = lease_member(key, attempt)
    verdict = gate.take_sync(TakeRequest(
        drop_id=DROP, customer_id=CUSTOMER, quantities={0: quantity}, now_ms=at, reference=key,
        fingerprint="fp", token_n=token_n, lead_ms=10**9, lease_member=member,
        lease_expires_ms=at + LEASE_MS))
    return verdict.outcome, member


def counts(gate: SyncGate) -> tuple[int, int, int]:
    k, client = gate.keys(DROP), gate.client
    return (int(client.hget(k.left, "0") or 0), int(client.hget(k.buyers, CUSTOMER) or 0),
            int(client.hget(k.tokens, CUSTOMER) or 0))


def test_a_live_lease_holds_the_units_and_a_replay_of_its_key_is_told_it_is_pending(gate):
    assert take(gate, key="k", at=NOW)[0] == "ok"

    replay = gate.take_sync(TakeRequest(
        drop_id=DROP, customer_id=CUSTOMER, quantities={0: 2}, now_ms=NOW + 1_000,
        reference="k", fingerprint="fp", token_n=1, lead_ms=10**9,
        lease_member=lease_member("k", "b"), lease_expires_ms=NOW + 1_000 + LEASE_MS))

    assert (replay.outcome, replay.values[1]) == ("replay", str(NOW + LEASE_MS))
    assert counts(gate) == (2, 2, 1)


def test_a_lapsed_lease_gives_units_count_and_admission_back_once(gate):
    take(gate, key="k", at=NOW)

    assert gate.sweep_leases_sync(DROP, now_ms=NOW + LEASE_MS) == 1
    assert counts(gate) == (4, 0, 0)
    assert gate.sweep_leases_sync(DROP, now_ms=NOW + LEASE_MS) == 0
    assert counts(gate) == (4, 0, 0)


def test_the_same_key_after_its_lease_lapsed_starts_afresh_with_a_lease_of_its_own(gate):
    take(gate, key="k", at=NOW)

    outcome, member = take(gate, key="k", at=NOW + LEASE_MS, attempt="b")

    assert outcome == "ok"
    assert counts(gate) == (2, 2, 1)
    assert gate.client.zrange(gate.keys(DROP).leases, 0, -1) == [member.encode()]


def test_a_slow_purchase_whose_lease_lapsed_before_its_order_was_written_takes_its_units_again(
        gate):
    # given a purchase whose lease lapsed (and was reclaimed) while its order was being written
    _, slow = take(gate, key="k", at=NOW)
    gate.sweep_leases_sync(DROP, now_ms=NOW + LEASE_MS)
    assert counts(gate) == (4, 0, 0)

    # when its order commits and the writer keeps its lease
    taken_again = gate.end_leases_sync(DROP, "keep", [slow])

    # then the units, the count and the token are taken again: Redis matches the order
    assert taken_again == 1
    assert counts(gate) == (2, 2, 1)
    assert gate.end_leases_sync(DROP, "keep", [slow]) == 0  # once
    assert counts(gate) == (2, 2, 1)


def test_a_slow_purchase_and_its_retry_after_the_lapse_count_the_units_once(gate):
    # given the first attempt's lease lapsed and its retry (same key) took afresh
    _, slow = take(gate, key="k", at=NOW)
    _, retry = take(gate, key="k", at=NOW + LEASE_MS, attempt="b")

    # when the first attempt's order commits (kept) and the retry finds that order and
    # returns its own units
    gate.end_leases_sync(DROP, "keep", [slow])
    gate.end_leases_sync(DROP, "return", [retry])

    # then the one order's units are taken once
    assert counts(gate) == (2, 2, 1)


def test_a_refused_purchase_returns_its_units_and_never_twice_after_a_lapse(gate):
    _, member = take(gate, key="k", at=NOW)

    gate.end_leases_sync(DROP, "return", [member])
    assert counts(gate) == (4, 0, 1)  # the admission stays used, as on the database path
    assert gate.sweep_leases_sync(DROP, now_ms=NOW + LEASE_MS) == 0
    gate.end_leases_sync(DROP, "return", [member])
    assert counts(gate) == (4, 0, 1)

    _, lapsed = take(gate, key="k2", at=NOW, token_n=2)
    gate.sweep_leases_sync(DROP, now_ms=NOW + LEASE_MS)
    gate.end_leases_sync(DROP, "return", [lapsed])
    assert counts(gate) == (4, 0, 1)


def test_a_purchase_whose_order_could_not_be_written_releases_its_admission_too(gate):
    _, member = take(gate, key="k", at=NOW)

    gate.end_leases_sync(DROP, "release", [member])

    assert counts(gate) == (4, 0, 0)


@pytest.mark.skipif(
    not (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="the gate's rebuild reads PostgreSQL (set DROPLINE_TEST_DATABASE_URL)")
def test_a_rebuild_from_postgresql_keeps_the_units_of_live_leases(db, clock, redis_client):
    # given a drop loaded in the gate and a purchase whose order is not written yet
    world = make_drop(db, clock, cap=4, limit=2)
    gate = SyncGate(redis_client, prefix=f"dl:lease:{uuid.uuid4().hex[:8]}:")
    reconcile(db, gate, clock=clock, drop_id=world.drop_id)
    at = int(clock.now().timestamp() * 1000)
    member = lease_member("k", "a")
    assert gate.take_sync(TakeRequest(
        drop_id=world.drop_id, customer_id=CUSTOMER, quantities={SHARED_POOL: 2}, now_ms=at,
        reference="k", fingerprint="fp", lead_ms=10**9, lease_member=member,
        lease_expires_ms=at + LEASE_MS)).outcome == "ok"

    # when the drop's keys are rebuilt from PostgreSQL (a resync, a reconcile)
    figures = reconcile(db, gate, clock=clock, drop_id=world.drop_id)

    # then the lease's units stay taken, and its later keep changes nothing
    k = gate.keys(world.drop_id)
    assert figures["left"] == 2
    assert int(redis_client.hget(k.buyers, CUSTOMER)) == 2
    assert gate.end_leases_sync(world.drop_id, "keep", [member]) == 0
    assert int(redis_client.hget(k.left, SHARED_POOL)) == 2
    redis_client.delete(*redis_client.scan_iter(match=f"{gate.prefix}*"))
