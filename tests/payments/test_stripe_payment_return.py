"""The shopper's return to the order after 3-D Secure (``GET /orders/{id}/payment-return``), with
the shop on the Stripe provider against localstripe: the order is settled by what Stripe says
of its PaymentIntent, never before Stripe decides, only for the order's own customer, and once
(a repeat, or the webhook after it, changes nothing)."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from dropline.locations.models import StockLevel

from tests.builders import sign_up
from tests.payments.localstripe_server import PUBLISHABLE_KEY
from tests.payments.test_stripe_provider import THREE_D_SECURE
from tests.payments.test_stripe_webhooks import (  # noqa: F401  (fixtures)
    buy,
    order_status,
    payment_of,
    shop,
    stripe_settings,
)
from tests.web.support import assert_problem, browser_session, changed_tables, snapshot


def _authenticate(localstripe: str, client_secret: str, *, success: bool) -> None:
    """What Stripe.js does in the page once the shopper answers their bank."""
    pi = client_secret.split("_secret_")[0]
    httpx.post(f"{localstripe}/v1/payment_intents/{pi}/_authenticate", data={
        "key": PUBLISHABLE_KEY, "client_secret": client_secret,
        "success": "true" if success else "false"}, timeout=10).raise_for_status()


def test_the_return_settles_the_order_only_once_stripe_has_decided(shop, db, clock,  # noqa: F811
                                                                   localstripe):
    waiting, _ = buy(shop, db, clock, localstripe, THREE_D_SECURE)
    problem = assert_problem(waiting, 402)
    order_id = problem["order_id"]
    before = snapshot(db)

    early = shop.get(f"/orders/{order_id}/payment-return", follow_redirects=False)

    assert early.status_code == 303  # nothing decided at Stripe yet: nothing settled
    assert order_status(db) == "pending-payment"
    assert changed_tables(before, snapshot(db)) == []

    _authenticate(localstripe, problem["client_secret"], success=True)
    back = shop.get(f"/orders/{order_id}/payment-return", follow_redirects=False)

    assert back.status_code == 303 and back.headers["location"] == f"/orders/{order_id}?placed=1"
    assert order_status(db) == "paid" and payment_of(db).status.value == "succeeded"
    settled = snapshot(db)
    shop.get(f"/orders/{order_id}/payment-return", follow_redirects=False)
    assert changed_tables(settled, snapshot(db)) == []


def test_a_failed_authentication_settles_the_order_declined_with_its_stock_back(
        shop, db, clock, localstripe):  # noqa: F811
    waiting, variant = buy(shop, db, clock, localstripe, THREE_D_SECURE)  # stock 3, buys 1
    problem = assert_problem(waiting, 402)

    _authenticate(localstripe, problem["client_secret"], success=False)
    shop.get(f"/orders/{problem['order_id']}/payment-return", follow_redirects=False)

    assert order_status(db) == "payment-failed"
    payment = payment_of(db)
    assert (payment.status.value, payment.decline_code) == (
        "declined", "payment_intent_authentication_failure")  # Stripe's code for it
    with db.transaction() as session:
        assert session.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == variant)) == 3


def test_another_customer_returning_to_the_order_changes_nothing(shop, db, clock,  # noqa: F811
                                                                 localstripe):
    waiting, _ = buy(shop, db, clock, localstripe, THREE_D_SECURE)
    problem = assert_problem(waiting, 402)
    _authenticate(localstripe, problem["client_secret"], success=True)

    with TestClient(shop.app, raise_server_exceptions=False) as other:
        stranger = browser_session(other)
        sign_up(stranger)
        before = snapshot(db)
        answer = stranger.get(f"/orders/{problem['order_id']}/payment-return",
                              follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/orders/{problem['order_id']}"
    assert changed_tables(before, snapshot(db)) == []
