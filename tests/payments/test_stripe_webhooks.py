"""Stripe webhooks (``POST /webhooks/stripe``) with the shop running on the Stripe provider
against localstripe: the signature is verified by the SDK, each event is stored once by id,
repeats and out-of-order deliveries change nothing, and the events drive the payment: 3-D
Secure completed later settles the order paid, a failure gives the units back, a dashboard
refund and a dispute are recorded on the order. Events are signed with the endpoint's test
secret as Stripe signs them; the first test has localstripe itself deliver its event to the
shop served on a real port."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dropline.adapters.stripe_payments import StripeProvider
from dropline.orders.models import Order
from dropline.payments.models import Payment, ProviderEventRecord
from dropline.risk.models import Chargeback
from dropline.web.app import create_app
from tests.builders import cart_with, checkout_body, make_location, make_product, sign_up
from tests.drops.servers import Server
from tests.payments.localstripe_server import PUBLISHABLE_KEY, SECRET_KEY
from tests.payments.test_stripe_provider import THREE_D_SECURE, WEBHOOK_SECRET, stripe_js
from tests.web.support import assert_problem, browser_session, changed_tables, snapshot


@pytest.fixture
def stripe_settings(settings, localstripe):
    return settings.model_copy(update={"payments": settings.payments.model_copy(update={
        "provider": "stripe", "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET, "stripe_api_base": localstripe})})


@pytest.fixture
def shop(db, clock, stripe_settings) -> Iterator[TestClient]:
    """The shop on the Stripe provider, built by the composition root from its settings."""
    app = create_app(stripe_settings, clock=clock, db=db, run_worker=False)
    assert isinstance(app.state.services.payments, StripeProvider)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield browser_session(client)


def signed(event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    """The body and header Stripe sends: ``t=<time>,v1=HMAC-SHA256(secret, "<t>.<body>")``."""
    body = json.dumps(event).encode()
    at = int(time.time())
    digest = hmac.new(secret.encode(), b"%d." % at + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={at},v1={digest}",
                  "Content-Type": "application/json"}


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:14]}", "object": "event", "type": kind,
            "created": int(time.time()), "data": {"object": obj}}


def deliver(shop: TestClient, body: bytes, headers: dict[str, str]):
    return shop.post("/webhooks/stripe", content=body, headers=headers)


def buy(shop: TestClient, db, clock, localstripe: str, number: str = "4242424242424242",
        price: int = 3000) -> tuple[Any, int]:
    make_location(db)
    _, variant = make_product(db, clock, price=price, stock=3)
    sign_up(shop)
    response = shop.post("/api/v1/checkout", headers={"Idempotency-Key": uuid.uuid4().hex},
                         json=checkout_body(cart_with(shop, variant),
                                            stripe_js(localstripe, number)))
    return response, variant


def payment_of(db) -> Payment:
    with db.transaction() as session:
        payment = session.scalar(select(Payment).order_by(Payment.id.desc()))
        session.expunge(payment)
        return payment


def order_status(db) -> str:
    with db.transaction() as session:
        return session.scalar(select(Order.status).order_by(Order.id.desc())).value


def test_stripe_3d_secure_checkout_waits_then_localstripes_webhook_settles_it_paid(
        db, clock, stripe_settings, localstripe):
    app = create_app(stripe_settings, clock=clock, db=db, run_worker=False)
    server = Server(app)
    try:
        hook = httpx.post(f"{localstripe}/_config/webhooks/{uuid.uuid4().hex}", data={
            "url": f"{server.url}/webhooks/stripe", "secret": WEBHOOK_SECRET,
            "events[]": ["payment_intent.succeeded"]})
        assert hook.status_code == 200
        with TestClient(app, base_url=server.url) as local:
            shop = browser_session(local)
            waiting, _ = buy(shop, db, clock, localstripe, THREE_D_SECURE)
            problem = assert_problem(waiting, 402)
            assert problem["type"].endswith("/payment-requires-action")
            assert order_status(db) == "pending-payment"
            pi = payment_of(db).provider_ref
            assert problem["client_secret"].startswith(pi)

            # The shopper passes 3-D Secure in the page (Stripe.js; localstripe's stand-in).
            httpx.post(f"{localstripe}/v1/payment_intents/{pi}/_authenticate", data={
                "key": PUBLISHABLE_KEY, "client_secret": problem["client_secret"],
                "success": "true"}).raise_for_status()

            deadline = time.monotonic() + 30  # localstripe delivers about a second later
            while order_status(db) != "paid" and time.monotonic() < deadline:
                time.sleep(0.05)  # polling the state the delivery changes, with a deadline
        assert order_status(db) == "paid" and payment_of(db).status.value == "succeeded"
        with db.transaction() as session:
            assert session.scalar(select(ProviderEventRecord.outcome).where(
                ProviderEventRecord.payment_reference == pi)) == "settled-paid"
    finally:
        server.stop()


def test_stripe_webhook_with_a_bad_signature_is_400_and_changes_nothing(shop, db, clock,
                                                                        localstripe):
    buy(shop, db, clock, localstripe)
    pi = payment_of(db).provider_ref
    before = snapshot(db)
    body, headers = signed(event("charge.dispute.created", {
        "object": "dispute", "payment_intent": pi, "amount": 3000, "reason": "fraudulent"}))

    tampered = deliver(shop, body.replace(b"3000", b"3001"), headers)
    wrong_secret = deliver(shop, *signed(json.loads(body), secret="whsec_other"))
    unsigned = shop.post("/webhooks/stripe", content=body,
                         headers={"Content-Type": "application/json"})

    for response in (tampered, wrong_secret, unsigned):
        assert assert_problem(response, 400)["type"].endswith("/bad-signature")
    assert changed_tables(before, snapshot(db)) == []


def test_stripe_webhook_delivered_twice_is_stored_once_and_applied_once(shop, db, clock,
                                                                        localstripe):
    paid, _ = buy(shop, db, clock, localstripe, price=3000)
    pi = payment_of(db).provider_ref
    dispute = signed(event("charge.dispute.created", {
        "object": "dispute", "payment_intent": pi, "amount": 3000, "reason": "fraudulent"}))

    first = deliver(shop, *dispute)
    again = deliver(shop, *dispute)

    assert paid.status_code == 201
    assert first.json()["outcome"] == "chargeback-recorded"
    assert again.status_code == 200 and again.json()["outcome"] == "repeat"
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Chargeback)) == 1
        assert session.scalar(select(func.count()).select_from(ProviderEventRecord)) == 1
        assert session.scalar(select(Chargeback.reason)) == "fraudulent"


def test_stripe_failure_reported_after_success_changes_nothing(shop, db, clock, localstripe):
    buy(shop, db, clock, localstripe)
    pi = payment_of(db).provider_ref
    succeeded = deliver(shop, *signed(event("payment_intent.succeeded", {
        "object": "payment_intent", "id": pi, "amount": 3395})))
    before = snapshot(db)

    failed_late = deliver(shop, *signed(event("payment_intent.payment_failed", {
        "object": "payment_intent", "id": pi, "amount": 3395,
        "last_payment_error": {"code": "card_declined"}})))

    assert succeeded.json()["outcome"] == "already-settled"
    assert failed_late.json()["outcome"] == "already-settled"
    assert changed_tables(before, snapshot(db)) == ["provider_events"]
    assert order_status(db) == "paid"


def test_stripe_failure_of_a_waiting_payment_gives_the_units_back(shop, db, clock, localstripe):
    waiting, variant = buy(shop, db, clock, localstripe, THREE_D_SECURE)
    pi = payment_of(db).provider_ref

    failed = deliver(shop, *signed(event("payment_intent.payment_failed", {
        "object": "payment_intent", "id": pi, "amount": 3395,
        "last_payment_error": {"code": "payment_intent_authentication_failure"}})))

    assert waiting.status_code == 402 and failed.json()["outcome"] == "settled-declined"
    assert order_status(db) == "payment-failed"
    assert payment_of(db).decline_code == "payment_intent_authentication_failure"
    assert shop.get(f"/api/v1/products/{variant}").status_code in (200, 404)
    from dropline.locations.models import StockLevel
    with db.transaction() as session:
        assert session.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == variant)) == 3


def test_stripe_refund_made_in_the_dashboard_is_recorded_once(shop, db, clock, localstripe):
    buy(shop, db, clock, localstripe, price=3000)
    pi = payment_of(db).provider_ref
    refunded = {"object": "charge", "id": "ch_x", "payment_intent": pi, "amount": 3395,
                "amount_refunded": 1000}

    first = deliver(shop, *signed(event("charge.refunded", refunded)))
    cumulative_again = deliver(shop, *signed(event("charge.refunded", refunded)))

    assert first.json()["outcome"] == "refund-recorded"
    assert cumulative_again.json()["outcome"] == "already-recorded"
    with db.transaction() as session:
        order = session.scalar(select(Order))
        assert (order.refunded_amount, order.status.value) == (1000, "partially-refunded")


def test_stripe_events_for_unknown_payments_or_types_are_kept_and_ignored(shop, db):
    unknown = deliver(shop, *signed(event("payment_intent.succeeded", {
        "object": "payment_intent", "id": "pi_not_ours", "amount": 1})))
    other = deliver(shop, *signed(event("customer.created", {"object": "customer"})))

    assert (unknown.json()["outcome"], other.json()["outcome"]) == ("unmatched", "ignored")


def test_setup_intents_are_throttled_per_ip_like_the_local_tokenising_endpoint(shop) -> None:
    """Each call creates a SetupIntent at Stripe that a card tester could confirm with card
    after card: counted with the local provider's tokenising endpoint."""
    shop.app.state.services.settings.throttle.card_tokens_per_ip_per_minute = 2
    json_please = {"Accept": "application/json"}  # as /static/pay/stripe.js asks
    made = [shop.post("/pay/stripe/setup-intents", headers=json_please) for _ in range(2)]

    refused = shop.post("/pay/stripe/setup-intents", headers=json_please)

    assert [answer.status_code for answer in made] == [201, 201]
    assert all(answer.json()["client_secret"].startswith("seti_") for answer in made)
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
