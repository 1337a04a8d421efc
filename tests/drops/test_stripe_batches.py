"""Drops under Stripe: the flash-crowd engine's batch writer (``drops.crowd.writer``) charges
each batch through the Stripe provider against localstripe, one PaymentIntent per order with
its payment's own idempotency key, a bounded number in flight (``StripeProvider.charge_many``);
nothing is oversold, each paid order has exactly one succeeded PaymentIntent, and an order
whose charge is undecided (3-D Secure) keeps its units until Stripe decides.

PostgreSQL and Redis only (the gate's engine)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from dropline.bootstrap import build_services
from dropline.clock import FrozenClock
from dropline.failpoints import AFTER_CHARGE
from dropline.orders.jobs import RECOVERY_GRACE_SECONDS
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import Payment, PaymentStatus
from dropline.recovery import recover_payments
from tests.drops.builders import make_drop
from tests.drops.processes import PREFIX, server_process, wait_for
from tests.drops.servers import Server, serve_gated
from tests.drops.test_crash_recovery import drop_keys, in_background  # noqa: F401
from tests.drops.test_gate import buy, facts, redis_left, shopper_token
from tests.orders.test_races import race
from tests.payments.conftest import localstripe  # noqa: F401  (the session's server)
from tests.payments.localstripe_server import PUBLISHABLE_KEY, SECRET_KEY
from tests.payments.test_stripe_provider import THREE_D_SECURE, stripe_js

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="the Redis gate runs on PostgreSQL only (set DROPLINE_TEST_DATABASE_URL)")


@pytest.fixture
def on_stripe(settings, localstripe):  # noqa: F811
    return settings.model_copy(update={"payments": settings.payments.model_copy(update={
        "provider": "stripe", "stripe_secret_key": SECRET_KEY,
        "stripe_publishable_key": PUBLISHABLE_KEY, "stripe_api_base": localstripe,
        "stripe_batch_concurrency": 4})})


@pytest.fixture
def gated_stripe(db, clock, on_stripe, redis_client) -> Iterator[Server]:
    with serve_gated(db, clock, on_stripe, redis_client) as server:
        yield server


def intents(localstripe: str) -> list[dict]:  # noqa: F811
    found = httpx.get(f"{localstripe}/v1/payment_intents", params={"limit": 100},
                      auth=(SECRET_KEY, ""), timeout=10).json()["data"]
    return [i for i in found if "dropline_key" in (i.get("metadata") or {})]


def test_a_crowd_on_stripe_never_buys_more_than_the_cap_and_pays_each_order_once(
        db, clock, gated_stripe, redis_client, localstripe):  # noqa: F811
    world = make_drop(db, clock, cap=6, limit=1, slots=2)
    tokens = [shopper_token(db, clock)[1] for _ in range(10)]
    cards = [stripe_js(localstripe, "4242424242424242") for _ in range(10)]
    before = {i["id"] for i in intents(localstripe)}

    responses = race(10, lambda i: buy(gated_stripe, tokens[i], world.variant_ids[0],
                                       card=cards[i], drop_id=world.drop_id))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 6, 409: 4}, [r.text for r in responses if r.status_code >= 500]
    after = facts(db, world.drop_id)
    assert (after["sold"], after["left"], after["paid"]) == (6, 0, 6)
    assert redis_left(gated_stripe, redis_client, world.drop_id) == 0
    made = [i for i in intents(localstripe) if i["id"] not in before]
    with db.transaction() as session:
        payments = session.scalars(select(Payment)).all()
    # one succeeded PaymentIntent per paid order, made with that payment's own key
    assert sorted((i["id"], i["metadata"]["dropline_key"]) for i in made) == sorted(
        (p.provider_ref, p.idempotency_key) for p in payments)
    assert {i["status"] for i in made} == {"succeeded"}
    assert {p.status for p in payments} == {PaymentStatus.succeeded}


def test_a_drop_order_waiting_for_3d_secure_keeps_its_units_until_stripe_decides(
        db, clock, gated_stripe, redis_client, localstripe):  # noqa: F811
    world = make_drop(db, clock, cap=1, limit=1)
    _, token = shopper_token(db, clock)
    _, rival = shopper_token(db, clock)

    held = buy(gated_stripe, token, world.variant_ids[0], key="three-d",
               card=stripe_js(localstripe, THREE_D_SECURE), drop_id=world.drop_id)

    assert held.status_code == 402, held.text
    problem = held.json()
    assert problem["type"].endswith("/payment-requires-action")
    assert problem["client_secret"].startswith("pi_")
    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        assert order.status is OrderStatus.pending_payment and order.id == problem["order_id"]
    # the one unit is held for this shopper while the bank waits for them
    assert buy(gated_stripe, rival, world.variant_ids[0],
               card=stripe_js(localstripe, "4242424242424242"),
               drop_id=world.drop_id).status_code == 409

    # the shopper authenticates (what Stripe.js does in the page), then comes back
    pi = problem["client_secret"].split("_secret_")[0]
    answer = httpx.post(f"{localstripe}/v1/payment_intents/{pi}/_authenticate",
                        params={"success": "true"},
                        data={"key": PUBLISHABLE_KEY, "client_secret": problem["client_secret"]},
                        timeout=10)
    assert answer.status_code == 200, answer.text
    with httpx.Client(base_url=gated_stripe.url, cookies={"dl_session": token},
                      timeout=30) as shopper:
        back = shopper.get(f"/orders/{order.id}/payment-return", follow_redirects=False)
    assert back.status_code == 303
    with db.transaction() as session:
        assert session.get(Order, order.id).status is OrderStatus.paid
        assert session.scalars(select(Payment.status)).one() is PaymentStatus.succeeded
    assert facts(db, world.drop_id)["sold"] == 1


def test_a_worker_killed_between_stripe_charges_and_settle_neither_oversells_nor_charges_twice(
        db, settings, on_stripe, redis_client, database_url, localstripe,  # noqa: F811
        drop_keys):
    """A real server process on Stripe is killed after its batch's charges, before the
    settle (``AFTER_CHARGE``). The recovery job finds the charge at Stripe by its key (the
    list API here: localstripe has no Search API) and settles it once; the shopper's retry is
    answered from that order. localstripe ignores idempotency keys, so "never charged twice" is
    counted in its PaymentIntents, not taken on trust."""
    now = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    world = make_drop(db, now, cap=2, limit=2)
    drop_keys(world.drop_id)
    _, token = shopper_token(db, now)
    card = stripe_js(localstripe, "4242424242424242")
    before = {i["id"] for i in intents(localstripe)}
    made = lambda: [i for i in intents(localstripe) if i["id"] not in before]  # noqa: E731
    with server_process(database_url, DROPLINE_TESTING_FAILPOINT=AFTER_CHARGE,
                        DROPLINE_PAYMENTS="stripe",
                        DROPLINE_PAYMENTS_STRIPE_SECRET_KEY=SECRET_KEY,
                        DROPLINE_PAYMENTS_STRIPE_API_BASE=localstripe) as victim:
        request = in_background(lambda: buy(victim, token, world.variant_ids[0],
                                            quantity=2, key="charged", card=card,
                                            drop_id=world.drop_id))
        wait_for(lambda: len(made()) == 1, what="the charge", alive=victim.process)
        victim.kill()
    request.join(timeout=30)
    with db.transaction() as session:
        assert session.scalars(select(Order.status)).all() == [OrderStatus.pending_payment]
    assert facts(db, world.drop_id)["left"] == 0  # the units stay with the order

    later = FrozenClock(datetime.now(UTC) + timedelta(seconds=RECOVERY_GRACE_SECONDS + 1))
    services = build_services(on_stripe, clock=later, db=db)
    recovered = recover_payments(db, clock=later, provider=services.payments,
                                 policy=services.checkout, redis_url=None)

    assert (recovered.paid, recovered.failed) == (1, 0)
    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        payment = session.scalars(select(Payment)).one()
    assert (order.status, payment.status) == (OrderStatus.paid, PaymentStatus.succeeded)
    assert [i["id"] for i in made()] == [payment.provider_ref]
    with serve_gated(db, later, on_stripe, redis_client, prefix=PREFIX) as server:
        retry = buy(server, token, world.variant_ids[0], quantity=2, key="charged",
                    card=card, drop_id=world.drop_id)
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == order.id and retry.json()["status"] == "paid"
    assert len(made()) == 1  # never charged again
    assert facts(db, world.drop_id)["sold"] == 2
