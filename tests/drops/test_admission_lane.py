"""Admission through the fast lane (``drops.crowd.admission``): the same answers as the FastAPI
route, and correct when a crowd asks at once. Real servers on PostgreSQL and Redis: the lane's (hot
path on) and the route's (the same app without Redis, so the route answers), on one database.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dropline.config import DropsSettings
from dropline.drops import rules, waiting_room
from dropline.drops.crowd.admission import Ask, admit_batch
from dropline.drops.models import DropQueueEntry
from dropline.drops.service import get_drop
from dropline.ratelimit import MemoryRateLimiter, RedisRateLimiter
from dropline.security import token_digest
from tests.drops.builders import make_drop
from tests.drops.servers import Server, serve_gated
from tests.drops.test_gate import buy, facts, shopper_token
from tests.orders.test_races import race

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="the hot path runs on PostgreSQL only (set DROPLINE_TEST_DATABASE_URL)")


@pytest.fixture
def gated(db, clock, settings, redis_client):
    with serve_gated(db, clock, settings, redis_client) as server:
        yield server


def admit(server: Server, drop_id: int, token: str | None) -> httpx.Response:
    cookies = {"dl_session": token} if token else {}
    with httpx.Client(base_url=server.url, timeout=30, cookies=cookies) as client:
        return client.post(f"/api/v1/drops/{drop_id}/admission")


def answer(response: httpx.Response) -> dict[str, Any]:
    """What a client sees, without the parts that differ by design (the token itself)."""
    body = response.json()
    if response.status_code != 200:
        return {"status": response.status_code, "type": body["type"], "detail": body["detail"],
                "position": body.get("position"), "admitted_at": body.get("admitted_at"),
                "retry_after": response.headers.get("retry-after"),
                "content_type": response.headers["content-type"]}
    claims = body["token"].split(".")[1]
    return {"status": 200, "expires_at": body["expires_at"],
            "cache": response.headers.get("cache-control"),
            "content_type": response.headers["content-type"], "claims_len": len(claims)}


@pytest.fixture
def both(db, clock, settings, redis_client):
    with serve_gated(db, clock, settings, redis_client) as lane, \
            serve_gated(db, clock, settings, redis_client, redis_url=None) as route:
        yield lane, route


def joined(db, clock, drop_id: int, n: int) -> list[tuple[int, str]]:
    """n shoppers who joined the queue, in their queue order."""
    shoppers = [shopper_token(db, clock) for _ in range(n)]
    with db.transaction() as session:
        drop = get_drop(session, drop_id)
        for customer_id, _ in shoppers:
            waiting_room.join_queue(session, clock=clock, drop=drop, customer_id=customer_id)
        keys = dict(session.execute(select(DropQueueEntry.customer_id, DropQueueEntry.sort_key)
                                    .where(DropQueueEntry.drop_id == drop_id)).all())
    return sorted(shoppers, key=lambda s: keys[s[0]])


def test_the_lane_answers_every_case_as_the_route_does(db, clock, both):
    lane, route = both
    world = make_drop(db, clock, queue=True, per_minute=60)
    first, _, third = joined(db, clock, world.drop_id, 3)
    _, stranger = shopper_token(db, clock)
    cases = {
        "signed out": (world.drop_id, None),
        "unknown drop": (10**12, first[1]),
        "not in the queue": (world.drop_id, stranger),
        "not admitted yet (third, 2 s to go)": (world.drop_id, third[1]),
        "admitted": (world.drop_id, first[1]),
    }
    for name, (drop_id, token) in cases.items():
        via_lane, via_route = admit(lane, drop_id, token), admit(route, drop_id, token)
        assert answer(via_lane) == answer(via_route), name
    # each answered its own way: the lane through its hot path, the route without one
    assert lane.app.state._state.get("drops_hot") is not None
    assert route.app.state._state.get("drops_hot") is None

    assert answer(admit(lane, world.drop_id, third[1]))["position"] == 3
    clock.advance(hours=3)  # the drop has ended
    assert answer(admit(lane, world.drop_id, first[1])) == answer(
        admit(route, world.drop_id, first[1]))
    assert answer(admit(lane, world.drop_id, first[1]))["type"].endswith("/drop-ended")


def test_the_lane_counts_against_the_same_limits_and_says_when_to_retry(db, clock, both):
    lane, route = both
    world = make_drop(db, clock, queue=True)
    [(_, token)] = joined(db, clock, world.drop_id, 1)
    for server in (lane, route):
        server.app.state.drops_limits = DropsSettings(identity_per_minute=2)
        server.app.state.drops_limiter = MemoryRateLimiter()
    statuses = {name: [admit(server, world.drop_id, token) for _ in range(3)]
                for name, server in (("lane", lane), ("route", route))}
    for responses in statuses.values():
        assert [r.status_code for r in responses] == [200, 200, 429]
        assert int(responses[2].headers["retry-after"]) >= 1
    with db.transaction() as session:
        assert session.scalar(select(DropQueueEntry.tokens_issued)) == 4  # not the refused


def test_a_crowd_admitted_at_once_gets_one_token_each_that_buys_once(db, clock, gated,
                                                                    redis_client):
    world = make_drop(db, clock, cap=100, limit=2, queue=True, per_minute=1_000_000)
    shoppers = joined(db, clock, world.drop_id, 40)
    clock.advance(seconds=1)  # at this rate, 40 places are admitted within 3 ms of the start

    responses = race(40, lambda i: admit(gated, world.drop_id, shoppers[i][1]))

    assert Counter(r.status_code for r in responses) == {200: 40}
    tokens = [r.json()["token"] for r in responses]
    assert all(rules.verify_admission(
        t, secret="test-secret", drop_id=world.drop_id, customer_id=customer_id,
        session=rules.session_binding(token_digest(session_token)), now=clock.now()).n == 1
        for t, (customer_id, session_token) in zip(tokens, shoppers, strict=True))
    bought = race(40, lambda i: buy(gated, shoppers[i][1], world.variant_ids[0],
                                    admission=tokens[i], drop_id=world.drop_id))
    assert Counter(r.status_code for r in bought) == {201: 40}
    replayed = buy(gated, shoppers[0][1], world.variant_ids[0], admission=tokens[0],
                   drop_id=world.drop_id)
    assert replayed.status_code == 403  # a token admits once
    assert facts(db, world.drop_id)["sold"] == 40


def test_one_shopper_asking_in_parallel_gets_distinct_single_use_tokens(db, clock, gated):
    world = make_drop(db, clock, cap=10, limit=2, queue=True, per_minute=1_000_000)
    [(customer_id, token)] = joined(db, clock, world.drop_id, 1)

    responses = race(6, lambda i: admit(gated, world.drop_id, token))

    assert Counter(r.status_code for r in responses) == {200: 6}
    numbers = sorted(rules.verify_admission(
        r.json()["token"], secret="test-secret", drop_id=world.drop_id, customer_id=customer_id,
        session=rules.session_binding(token_digest(token)), now=clock.now()).n
        for r in responses)
    assert numbers == [1, 2, 3, 4, 5, 6]
    with db.transaction() as session:
        assert session.scalar(select(DropQueueEntry.tokens_issued)) == 6


def test_asks_of_one_shopper_in_one_batch_take_consecutive_numbers(db, clock):
    from tests.drops.builders import LeadTimes

    world = make_drop(db, clock, queue=True)
    (first, _), (second, _) = joined(db, clock, world.drop_id, 2)
    clock.advance(seconds=5)
    asks = [Ask(world.drop_id, first, "10.0.0.1"), Ask(world.drop_id, second, "10.0.0.2"),
            Ask(world.drop_id, first, "10.0.0.1"), Ask(10**12, first, "10.0.0.1")]

    admit_batch(db, clock=clock, limiter=MemoryRateLimiter(), limits=DropsSettings(),
                early_access=LeadTimes(), asks=asks)

    assert [(ask.n, type(ask.error).__name__) for ask in asks] == [
        (1, "NoneType"), (1, "NoneType"), (2, "NoneType"), (0, "NotFound")]
    admit_batch(db, clock=clock, limiter=MemoryRateLimiter(), limits=DropsSettings(),
                early_access=LeadTimes(), asks=[again := Ask(world.drop_id, first, "10.0.0.1")])
    assert again.n == 3


def test_a_limiter_that_cannot_be_reached_is_a_503_and_issues_nothing(db, clock, gated):
    world = make_drop(db, clock, queue=True)
    [(_, token)] = joined(db, clock, world.drop_id, 1)
    gated.app.state.drops_limits = DropsSettings()
    gated.app.state.drops_limiter = RedisRateLimiter.from_url("redis://127.0.0.1:1/0")

    refused = admit(gated, world.drop_id, token)

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    with db.transaction() as session:
        assert session.scalar(select(DropQueueEntry.tokens_issued)) == 0
