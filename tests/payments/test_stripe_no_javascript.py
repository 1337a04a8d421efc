"""Paying on Stripe without JavaScript, the shop on the Stripe provider against localstripe:

- the card: a form sent without a payment method goes to Stripe's hosted page, a Checkout
  Session in ``mode=setup``; back at ``/pay/stripe/return`` the shop reads the session's
  SetupIntent's PaymentMethod from Stripe (never from the query) and goes on to the form, with
  what the shopper typed sealed, never in any URL;
- 3-D Secure: the order's confirm page's button confirms the waiting PaymentIntent with
  ``return_url`` and sends the browser to ``next_action.redirect_to_url`` (303); back at the
  order's payment return, the order is settled by what Stripe says.

localstripe 1.15.10 has no Checkout Sessions and refuses ``return_url`` on a confirmation, so
those two parts are answered at the SDK's HTTP transport (``StripeStandIn``, a real
``stripe.RequestsClient`` that answers those requests itself, as Stripe documents them, and
sends every other request to localstripe). What the stand-in answers is built from
localstripe's own objects: the session's SetupIntent and PaymentMethod, and the intent the
bank then decides, are real localstripe objects, so the card, the charge and the order's
settlement run against localstripe."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import stripe
from fastapi.testclient import TestClient
from sqlalchemy import select

from dropline.adapters.stripe_payments import StripeProvider
from dropline.orders.models import Order, OrderStatus
from dropline.web.app import create_app
from tests.builders import make_location, make_product, sign_up
from tests.payments.localstripe_server import PUBLISHABLE_KEY, SECRET_KEY
from tests.payments.test_hosted_card_return import assert_no_personal_data
from tests.payments.test_stripe_provider import THREE_D_SECURE, VISA, stripe_js
from tests.payments.test_stripe_webhooks import stripe_settings  # noqa: F401  (fixture)
from tests.storefront.builders import CHECKOUT_FORM
from tests.web.support import browser_session, changed_tables, snapshot


class StripeStandIn(stripe.RequestsClient):
    """The SDK's transport: Checkout Sessions and confirmations with ``return_url`` answered
    here (localstripe lacks them), everything else sent to localstripe. Keeps what it was
    sent, and the sessions it opened."""

    def __init__(self, localstripe: str) -> None:
        super().__init__(timeout=20)
        self.localstripe = localstripe
        self.sent: list[tuple[str, str, dict[str, list[str]]]] = []
        self.sessions: dict[str, dict[str, Any]] = {}

    def request(self, method, url, headers, post_data=None):  # type: ignore[override]
        parts = urlsplit(url)
        form = parse_qs(post_data or "") if method == "post" else parse_qs(parts.query)
        self.sent.append((method, parts.path, form))
        if parts.path.startswith("/v1/checkout/sessions"):
            return self._checkout_session(method, parts.path, form)
        if parts.path.endswith("/confirm") and "return_url" in form:
            return self._confirm_with_return_url(parts.path.split("/")[3], form)
        return super().request(method, url, headers, post_data)

    @staticmethod
    def _answer(status: int, body: dict[str, Any]):
        return json.dumps(body).encode(), status, {"request-id": f"req_{uuid.uuid4().hex[:8]}"}

    def _missing(self, what: str):
        return self._answer(404, {"error": {"type": "invalid_request_error",
                                            "code": "resource_missing",
                                            "message": f"No such {what}"}})

    def _checkout_session(self, method: str, path: str, form: dict[str, list[str]]):
        if method == "post":  # POST /v1/checkout/sessions
            session_id = f"cs_test_{uuid.uuid4().hex}"
            self.sessions[session_id] = {
                "id": session_id, "object": "checkout.session", "mode": form["mode"][0],
                "status": "open", "currency": form.get("currency", [None])[0],
                "success_url": form["success_url"][0], "cancel_url": form["cancel_url"][0],
                "client_reference_id": form.get("client_reference_id", [None])[0],
                "url": f"https://checkout.stripe.com/c/pay/{session_id}", "setup_intent": None}
            return self._answer(200, self.sessions[session_id])
        session = self.sessions.get(path.rsplit("/", 1)[1])
        if session is None:
            return self._missing("checkout.session")
        answer = dict(session)
        expand = [v for k, vs in form.items() if k.startswith("expand[") for v in vs]
        if session["setup_intent"] and "setup_intent" in expand:
            answer["setup_intent"] = httpx.get(
                f"{self.localstripe}/v1/setup_intents/{session['setup_intent']}",
                auth=(SECRET_KEY, ""), timeout=10).json()
        return self._answer(200, answer)

    def give_card(self, session_id: str, number: str = VISA) -> str:
        """The shopper on Stripe's hosted page: the card set up through a SetupIntent (at
        localstripe) and the session complete. Returns the address Stripe sends them to."""
        method = stripe_js(self.localstripe, number)
        setup = httpx.post(f"{self.localstripe}/v1/setup_intents", auth=(SECRET_KEY, ""),
                           data={"payment_method_types[]": "card"}, timeout=10).json()
        confirmed = httpx.post(f"{self.localstripe}/v1/setup_intents/{setup['id']}/confirm",
                               auth=(SECRET_KEY, ""), data={"payment_method": method},
                               timeout=10).json()
        assert confirmed["status"] == "succeeded", confirmed
        session = self.sessions[session_id]
        session.update(status="complete", setup_intent=setup["id"])
        return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)

    def _confirm_with_return_url(self, intent_id: str, form: dict[str, list[str]]):
        intent = httpx.get(f"{self.localstripe}/v1/payment_intents/{intent_id}",
                           auth=(SECRET_KEY, ""), timeout=10)
        if intent.status_code != 200:
            return self._missing("payment_intent")
        body = intent.json()
        if body["status"] != "requires_action":  # Stripe: nothing left to confirm
            return self._answer(400, {"error": {
                "type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                "message": f"This PaymentIntent's status is {body['status']}"}})
        body["next_action"] = {"type": "redirect_to_url", "redirect_to_url": {
            "url": f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent_id}",
            "return_url": form["return_url"][0]}}
        return self._answer(200, body)


@pytest.fixture
def stand_in(localstripe) -> StripeStandIn:
    return StripeStandIn(localstripe)


@pytest.fixture
def shop(db, clock, stripe_settings, stand_in) -> Iterator[TestClient]:  # noqa: F811
    provider = StripeProvider(secret_key=SECRET_KEY, api_base=stand_in.localstripe,
                              http_client=stand_in)
    app = create_app(stripe_settings, clock=clock, db=db, payments=provider, run_worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield browser_session(client)


def _cart(shop, db, clock, email: str = "ada@example.com") -> None:
    make_location(db)
    _, variant_id = make_product(db, clock, stock=3)
    sign_up(shop, email=email)
    shop.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})


def _local(location: str) -> str:
    """The path and query of an address of the shop (the test client's host)."""
    parts = urlsplit(location)
    assert parts.netloc in ("", "testserver"), location
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _to_stripes_page(shop, stand_in) -> tuple[str, str]:
    sent = shop.post("/checkout", data={**CHECKOUT_FORM, "key": "k1", "payment_method": ""},
                     follow_redirects=False)
    assert sent.status_code == 303, sent.text
    session_id = sent.headers["location"].rsplit("/", 1)[1]
    return sent.headers["location"], session_id


def test_a_form_without_a_card_goes_to_a_checkout_session_in_setup_mode(shop, db, clock,
                                                                        stand_in):
    _cart(shop, db, clock)
    before = snapshot(db)

    location, session_id = _to_stripes_page(shop, stand_in)

    assert location == f"https://checkout.stripe.com/c/pay/{session_id}"
    assert_no_personal_data(location)
    [(_, _, created)] = [s for s in stand_in.sent if s[1] == "/v1/checkout/sessions"]
    assert created["mode"] == ["setup"] and created["payment_method_types[0]"] == ["card"]
    assert created["currency"] == ["gbp"]
    success, cancel = created["success_url"][0], created["cancel_url"][0]
    assert success.startswith(
        "http://testserver/pay/stripe/return?session_id={CHECKOUT_SESSION_ID}&return_to=")
    assert cancel.startswith("http://testserver/checkout?returned=v1%3A")
    for address in (success, cancel):
        assert_no_personal_data(address)
    owner = created["client_reference_id"][0]
    assert len(owner) == 32 and "@" not in owner
    assert changed_tables(before, snapshot(db)) == []


def test_back_from_stripes_page_the_card_is_read_from_stripe_and_the_order_paid(shop, db, clock,
                                                                               stand_in):
    _cart(shop, db, clock)
    _, session_id = _to_stripes_page(shop, stand_in)

    success = stand_in.give_card(session_id)
    back = shop.get(_local(success), follow_redirects=False)

    assert back.status_code == 303
    target = back.headers["location"]
    assert target.startswith("/checkout?returned=v1%3A") and "&payment_method=pm_" in target
    assert_no_personal_data(target)
    assert ("get", f"/v1/checkout/sessions/{session_id}",
            {"expand[0]": ["setup_intent"]}) in stand_in.sent
    page = shop.get(target)
    assert "Card ending 4242, given to the payment provider." in page.text
    assert 'value="1 Fournier St"' in page.text and 'value="Ada Lovelace"' in page.text
    method = parse_qs(urlsplit(target).query)["payment_method"][0]
    placed = shop.post("/checkout", data={**CHECKOUT_FORM, "key": "k1",
                                          "payment_method": method}, follow_redirects=False)
    assert placed.status_code == 303 and "placed=1" in placed.headers["location"]
    with db.transaction() as session:
        assert session.scalars(select(Order.status)).one() is OrderStatus.paid


def test_a_session_unfinished_unknown_or_someone_elses_gives_no_card(shop, db, clock, stand_in):
    _cart(shop, db, clock)
    _, session_id = _to_stripes_page(shop, stand_in)
    unfinished = shop.get(
        f"/pay/stripe/return?session_id={session_id}&return_to=%2Fcheckout",
        follow_redirects=False)
    unknown = shop.get("/pay/stripe/return?session_id=cs_test_nope&return_to=%2Fcheckout",
                       follow_redirects=False)
    success = stand_in.give_card(session_id)
    with TestClient(shop.app, raise_server_exceptions=False) as other:
        stranger = browser_session(other)
        sign_up(stranger)
        theirs = stranger.get(_local(success), follow_redirects=False)
    offsite = shop.get(f"/pay/stripe/return?session_id={session_id}&return_to="
                       f"{quote('//evil.example/x', safe='')}", follow_redirects=False)

    for answer in (unfinished, unknown, theirs):
        assert answer.status_code == 303
        assert answer.headers["location"] == "/checkout" or (
            answer.headers["location"].startswith("/checkout?returned=")
            and "payment_method" not in answer.headers["location"])
    assert offsite.headers["location"].startswith("/?payment_method=pm_")


def test_3d_secure_without_javascript_goes_to_the_banks_page_and_back_to_the_order(
        shop, db, clock, stand_in, localstripe):
    _cart(shop, db, clock)
    placed = shop.post("/checkout", data={**CHECKOUT_FORM, "key": "k1",
                                          "payment_method": stripe_js(localstripe,
                                                                      THREE_D_SECURE)},
                       follow_redirects=False)
    confirm_page = placed.headers["location"]
    order_id = int(confirm_page.split("/")[2])
    page = shop.get(confirm_page)
    assert f'action="/orders/{order_id}/bank-authentication"' in page.text

    to_bank = shop.post(f"/orders/{order_id}/bank-authentication", follow_redirects=False)

    [(_, path, confirmed)] = [s for s in stand_in.sent if s[1].endswith("/confirm")]
    intent_id = path.split("/")[3]
    assert to_bank.status_code == 303
    assert to_bank.headers["location"] == (
        f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent_id}")
    assert confirmed["return_url"] == [f"http://testserver/orders/{order_id}/payment-return"]
    # The bank says yes (localstripe's stand-in for it), then sends the browser back.
    client_secret = httpx.get(f"{localstripe}/v1/payment_intents/{intent_id}",
                              auth=(SECRET_KEY, ""), timeout=10).json()["client_secret"]
    httpx.post(f"{localstripe}/v1/payment_intents/{intent_id}/_authenticate", data={
        "key": PUBLISHABLE_KEY, "client_secret": client_secret, "success": "true"},
        timeout=10).raise_for_status()
    back = shop.get(_local(confirmed["return_url"][0]) + f"?payment_intent={intent_id}",
                    follow_redirects=False)

    assert back.headers["location"] == f"/orders/{order_id}?placed=1"
    with db.transaction() as session:
        assert session.scalars(select(Order.status)).one() is OrderStatus.paid
    # Decided: the button now leads back to the order without asking Stripe again.
    again = shop.post(f"/orders/{order_id}/bank-authentication", follow_redirects=False)
    assert again.headers["location"] == f"/orders/{order_id}"
