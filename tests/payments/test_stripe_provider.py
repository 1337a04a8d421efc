"""Contract tests of the Stripe provider (``adapters.stripe_payments``) against localstripe, a
local Stripe API server started for the session (``tests/payments/conftest.py``): payment,
decline, 3-D Secure ``requires_action``, refunds, saved cards and off-session renewals, and
webhook signatures. What localstripe does not implement is tested at the SDK's HTTP transport
(a real ``stripe.RequestsClient`` that records what it sends), and each such test says so.

Cards are tokenised the way Stripe.js does it (``POST /v1/payment_methods`` with the card),
here by the test, which plays the browser: the provider never sees a card number."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from dropline.adapters.stripe_payments import StripeProvider, stripe_key
from dropline.errors import UnknownPaymentMethod
from dropline.payments.provider import (
    CardRefused,
    CardToken,
    ChargeRequest,
    ProviderUnavailable,
    SignatureRefused,
)
from tests.payments.localstripe_server import PUBLISHABLE_KEY, SECRET_KEY, free_port

WEBHOOK_SECRET = "whsec_dropline_test"
VISA = "4242424242424242"
CHARGE_FAILS = "4000000000000341"  # attaches, then every charge is declined
THREE_D_SECURE = "4000002500003155"  # localstripe asks for authentication on every use
ATTACH_DECLINED = "4000000000000002"


class RecordingTransport(stripe.RequestsClient):
    """The SDK's own HTTP transport, keeping (method, url, headers, body) of every request."""

    def __init__(self) -> None:
        super().__init__(timeout=20)
        self.sent: list[tuple[str, str, dict[str, str], str]] = []

    def request(self, method, url, headers, post_data=None):  # type: ignore[override]
        self.sent.append((method, url, dict(headers or {}), post_data or ""))
        return super().request(method, url, headers, post_data)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def provider(localstripe: str, transport: RecordingTransport) -> StripeProvider:
    return StripeProvider(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET,
                          api_base=localstripe, http_client=transport)


def stripe_js(localstripe: str, number: str) -> str:
    """What Stripe.js does in the browser: the card goes to Stripe, a reference comes back."""
    response = httpx.post(f"{localstripe}/v1/payment_methods", auth=(SECRET_KEY, ""), data={
        "type": "card", "card[number]": number, "card[exp_month]": "12",
        "card[exp_year]": "2030", "card[cvc]": "123"})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def card(provider: StripeProvider, localstripe: str, number: str = VISA) -> CardToken:
    return provider.describe_card(stripe_js(localstripe, number))


def intent(localstripe: str, reference: str) -> dict[str, Any]:
    return httpx.get(f"{localstripe}/v1/payment_intents/{reference}",
                     auth=(SECRET_KEY, "")).json()


def key() -> str:
    return uuid.uuid4().hex


# -- cards and payments ----------------------------------------------------------------------


def test_stripe_describes_a_card_by_last4_and_fingerprint_only(provider, localstripe):
    token = card(provider, localstripe)

    assert token.reference.startswith("pm_") and token.last4 == "4242"
    assert token.fingerprint and VISA not in token.fingerprint


def test_stripe_refuses_a_payment_method_it_never_issued(provider):
    with pytest.raises(UnknownPaymentMethod):
        provider.describe_card("pm_never_issued")


def test_stripe_test_payment_methods_work_without_tokenising(provider):
    visa = provider.describe_card("pm_card_visa")

    result = provider.charge(amount=1500, currency="GBP", card=visa, idempotency_key=key())

    assert result.status == "succeeded" and visa.last4 == "4242"


def test_stripe_payment_succeeds_as_a_payment_intent_of_the_amount(provider, localstripe):
    result = provider.charge(amount=4200, currency="GBP", card=card(provider, localstripe),
                             idempotency_key=key())

    assert result.status == "succeeded" and result.reference.startswith("pi_")
    stored = intent(localstripe, result.reference)
    assert (stored["amount"], stored["currency"], stored["status"]) == (4200, "gbp", "succeeded")


def test_stripe_refuses_currencies_whose_minor_unit_is_not_a_hundredth(provider, localstripe,
                                                                      transport):
    visa = card(provider, localstripe)
    transport.sent.clear()

    results = [provider.charge(amount=4200, currency=currency, card=visa, idempotency_key=key())
               for currency in ("JPY", "KWD")]

    assert [(r.status, r.decline_code) for r in results] == [
        ("declined", "unsupported_currency")] * 2
    assert transport.sent == []  # refused before any request: nothing was charged


def test_stripe_decline_carries_the_decline_code_and_takes_nothing(provider, localstripe):
    result = provider.charge(amount=4200, currency="GBP",
                             card=card(provider, localstripe, CHARGE_FAILS),
                             idempotency_key=key())

    assert (result.status, result.decline_code) == ("declined", "card_declined")


def test_stripe_3d_secure_is_requires_action_with_the_client_secret(provider, localstripe):
    result = provider.charge(amount=4200, currency="GBP",
                             card=card(provider, localstripe, THREE_D_SECURE),
                             idempotency_key=key())

    assert result.status == "requires_action"
    assert result.client_secret and result.client_secret.startswith(result.reference)
    assert intent(localstripe, result.reference)["status"] == "requires_action"


def test_stripe_3d_secure_completed_by_the_shopper_succeeds(provider, localstripe):
    result = provider.charge(amount=4200, currency="GBP",
                             card=card(provider, localstripe, THREE_D_SECURE),
                             idempotency_key=key())

    # What Stripe.js does once the bank's page says yes (localstripe's stand-in endpoint).
    done = httpx.post(f"{localstripe}/v1/payment_intents/{result.reference}/_authenticate",
                      data={"key": PUBLISHABLE_KEY, "client_secret": result.client_secret,
                            "success": "true"})

    assert done.status_code == 200, done.text
    assert intent(localstripe, result.reference)["status"] == "succeeded"


def test_stripe_3d_secure_refused_by_the_shopper_leaves_it_unpaid(provider, localstripe):
    result = provider.charge(amount=4200, currency="GBP",
                             card=card(provider, localstripe, THREE_D_SECURE),
                             idempotency_key=key())
    httpx.post(f"{localstripe}/v1/payment_intents/{result.reference}/_authenticate",
               data={"key": PUBLISHABLE_KEY, "client_secret": result.client_secret,
                     "success": "false"})

    stored = intent(localstripe, result.reference)
    assert stored["status"] == "requires_payment_method"
    assert stored["last_payment_error"]["code"] == "payment_intent_authentication_failure"


# -- refunds ---------------------------------------------------------------------------------


def test_stripe_partial_refunds_add_up_on_the_charge(provider, localstripe):
    paid = provider.charge(amount=5000, currency="GBP", card=card(provider, localstripe),
                           idempotency_key=key())

    first = provider.refund(charge_reference=paid.reference, amount=1200, currency="GBP",
                            idempotency_key=key())
    second = provider.refund(charge_reference=paid.reference, amount=800, currency="GBP",
                             idempotency_key=key())

    assert first.startswith("re_") and second.startswith("re_") and first != second
    refunds = httpx.get(f"{localstripe}/v1/refunds", auth=(SECRET_KEY, ""),
                        params={"payment_intent": paid.reference}).json()["data"]
    assert sorted((r["id"], r["amount"]) for r in refunds) == sorted([(first, 1200),
                                                                      (second, 800)])


# -- saved cards and renewals ----------------------------------------------------------------


def test_stripe_saved_card_is_charged_off_session_for_a_renewal(provider, localstripe):
    saved = provider.save_card(card=card(provider, localstripe))

    renewal = provider.charge_saved(amount=1000, currency="GBP", token=saved.token,
                                    idempotency_key=key())

    customer, _, method = saved.token.partition(":")
    assert customer.startswith("cus_") and method.startswith("pm_") and saved.last4 == "4242"
    assert renewal.status == "succeeded"
    stored = intent(localstripe, renewal.reference)
    assert (stored["customer"], stored["payment_method"]) == (customer, method)


def test_stripe_refuses_to_save_a_card_the_bank_declines(provider, localstripe):
    with pytest.raises(CardRefused) as refused:
        provider.save_card(card=card(provider, localstripe, ATTACH_DECLINED))

    assert refused.value.decline_code == "card_declined"


def test_stripe_saving_a_card_that_needs_the_member_present_is_refused(provider, localstripe):
    with pytest.raises(CardRefused) as refused:
        provider.save_card(card=card(provider, localstripe, THREE_D_SECURE))

    assert refused.value.decline_code == "authentication_required"


def test_stripe_off_session_renewal_needing_authentication_is_declined_as_such(
        provider, localstripe):
    # A card saved without a set-up check (attached directly), then asked for 3-D Secure.
    method = stripe_js(localstripe, THREE_D_SECURE)
    customer = httpx.post(f"{localstripe}/v1/customers", auth=(SECRET_KEY, "")).json()["id"]
    httpx.post(f"{localstripe}/v1/payment_methods/{method}/attach", auth=(SECRET_KEY, ""),
               data={"customer": customer})

    renewal = provider.charge_saved(amount=1000, currency="GBP", token=f"{customer}:{method}",
                                    idempotency_key=key())

    assert (renewal.status, renewal.decline_code) == ("declined", "authentication_required")


def test_stripe_off_session_renewal_on_a_failing_card_is_declined(provider, localstripe):
    saved = provider.save_card(card=card(provider, localstripe, CHARGE_FAILS))

    renewal = provider.charge_saved(amount=1000, currency="GBP", token=saved.token,
                                    idempotency_key=key())

    assert (renewal.status, renewal.decline_code) == ("declined", "card_declined")


# -- idempotency and failures, at the SDK's transport ----------------------------------------


def test_stripe_requests_carry_idempotency_keys_derived_from_droplines(provider, localstripe,
                                                                       transport):
    """localstripe ignores Idempotency-Key, so this checks what the SDK sends: each charge and
    refund carries Stripe's key derived from Dropline's, and a retry of the same Dropline key
    sends the same Stripe key (which real Stripe answers from its memory)."""
    visa = card(provider, localstripe)
    transport.sent.clear()

    paid = provider.charge(amount=900, currency="GBP", card=visa, idempotency_key="pay-1")
    provider.charge(amount=900, currency="GBP", card=visa, idempotency_key="pay-1")
    provider.refund(charge_reference=paid.reference, amount=100, currency="GBP",
                    idempotency_key="refund-1")

    posts = [(url.rsplit("/v1/", 1)[1], headers.get("Idempotency-Key"))
             for method, url, headers, _ in transport.sent if method == "post"]
    assert posts == [("payment_intents", stripe_key("pay-1")),
                     ("payment_intents", stripe_key("pay-1")),
                     ("refunds", stripe_key("refund-1"))]
    assert stripe_key("pay-1") == "dropline-pay-1"


def test_stripe_sends_no_card_data_only_the_payment_method(provider, localstripe, transport):
    """What leaves Dropline for Stripe, read at the transport: references, never a card."""
    visa = card(provider, localstripe)
    transport.sent.clear()

    provider.charge(amount=900, currency="GBP", card=visa, idempotency_key=key())
    provider.save_card(card=visa)

    bodies = " ".join(body for _, _, _, body in transport.sent)
    assert f"payment_method={visa.reference}" in bodies
    assert VISA not in bodies and "cvc" not in bodies and "card%5Bnumber" not in bodies


class CountingTransport(RecordingTransport):
    """Counts the requests in flight at once; fails the first try of the keys in ``flaky``
    with a connection error, as a dropped connection would."""

    def __init__(self, flaky: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.flaky = set(flaky)
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def request(self, method, url, headers, post_data=None):  # type: ignore[override]
        key = (headers or {}).get("Idempotency-Key", "")
        with self.lock:
            if key in self.flaky:
                self.flaky.discard(key)
                self.sent.append((method, url, dict(headers or {}), post_data or ""))
                raise stripe.APIConnectionError("connection reset (test transport)")
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return super().request(method, url, headers, post_data)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_stripe_batch_charges_each_order_with_its_own_key_and_a_bounded_number_in_flight(
        localstripe):
    """A drop batch (``charge_many``): one PaymentIntent per request, its own Idempotency-Key
    each, results in the requests' order, never more than ``batch_concurrency`` requests in
    flight; a charge whose connection drops is retried with the same key. Read at the SDK's
    transport (localstripe ignores the keys)."""
    transport = CountingTransport(flaky={stripe_key("batch-3")})
    batch = StripeProvider(secret_key=SECRET_KEY, api_base=localstripe, batch_concurrency=3,
                           http_client=transport)
    cards = [stripe_js(localstripe, VISA)] * 8 + [stripe_js(localstripe, CHARGE_FAILS)]
    requests = [ChargeRequest(amount=1000 + i, currency="GBP",
                              card=CardToken(pm, "4242", "x"), idempotency_key=f"batch-{i}")
                for i, pm in enumerate(cards)]

    results = batch.charge_many(requests)

    assert [r.status for r in results] == ["succeeded"] * 8 + ["declined"]
    amounts = [intent(localstripe, r.reference)["amount"] for r in results[:8]]
    assert amounts == [1000 + i for i in range(8)]  # each result is its own request's
    keys = [headers.get("Idempotency-Key") for method, _, headers, _ in transport.sent
            if method == "post"]
    assert sorted(keys) == sorted([stripe_key(f"batch-{i}") for i in range(9)]
                                  + [stripe_key("batch-3")])  # batch-3 twice: the retry
    assert transport.most_in_flight <= 3


def test_stripe_unreachable_is_provider_unavailable_so_the_same_key_is_retried():
    """A real connection to a port nobody listens on: the SDK's connection error becomes
    ProviderUnavailable, which payments.charging retries with the same key."""
    closed = StripeProvider(secret_key=SECRET_KEY, api_base=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(ProviderUnavailable):
        closed.charge(amount=900, currency="GBP",
                      card=CardToken("pm_card_visa", "4242", "x"), idempotency_key=key())


# -- webhooks --------------------------------------------------------------------------------


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook endpoint on a free port, keeping each delivery's body and signature."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, str]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.deliveries.append((body, self.headers["Stripe-Signature"]))
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def wait_for(self, event_type: str, payment: str, timeout: float = 30) -> tuple[bytes, str]:
        """The delivery of ``event_type`` about ``payment`` (other tests' events may arrive)."""
        def found() -> tuple[bytes, str] | None:
            return next((d for d in self.deliveries if (json.loads(d[0])["type"], json.loads(
                d[0])["data"]["object"]["id"]) == (event_type, payment)), None)
        with self.arrived:
            assert self.arrived.wait_for(found, timeout), f"no {event_type} delivered"
            return found()  # type: ignore[return-value]


@pytest.fixture
def receiver(localstripe: str) -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook = uuid.uuid4().hex
    registered = httpx.post(f"{localstripe}/_config/webhooks/{hook}", data={
        "url": f"http://127.0.0.1:{server.server_address[1]}/", "secret": WEBHOOK_SECRET,
        "events[]": ["payment_intent.succeeded", "payment_intent.payment_failed"]})
    assert registered.status_code == 200, registered.text
    yield server
    # localstripe has no way to unregister: point this hook at a closed port instead.
    httpx.post(f"{localstripe}/_config/webhooks/{hook}", data={
        "url": f"http://127.0.0.1:{free_port()}/", "secret": WEBHOOK_SECRET,
        "events[]": ["none"]})
    server.shutdown()
    server.server_close()


def test_stripe_webhook_signed_by_stripe_verifies_and_names_the_payment(provider, localstripe,
                                                                        receiver):
    paid = provider.charge(amount=4200, currency="GBP", card=card(provider, localstripe),
                           idempotency_key=key())

    body, signature = receiver.wait_for("payment_intent.succeeded", paid.reference)
    event = provider.verify_event(body, signature)

    assert event.type == "payment_intent.succeeded" and event.id.startswith("evt_")
    assert (event.payment_reference, event.amount) == (paid.reference, 4200)


def test_stripe_webhook_with_a_changed_body_is_refused(provider, localstripe, receiver):
    paid = provider.charge(amount=4200, currency="GBP", card=card(provider, localstripe),
                           idempotency_key=key())
    body, signature = receiver.wait_for("payment_intent.succeeded", paid.reference)

    with pytest.raises(SignatureRefused):
        provider.verify_event(body.replace(b"4200", b"1"), signature)


def test_stripe_webhook_signed_with_another_secret_is_refused(localstripe, provider, receiver):
    paid = provider.charge(amount=4200, currency="GBP", card=card(provider, localstripe),
                           idempotency_key=key())
    body, signature = receiver.wait_for("payment_intent.succeeded", paid.reference)
    other = StripeProvider(secret_key=SECRET_KEY, webhook_secret="whsec_someone_else",
                           api_base=localstripe)

    with pytest.raises(SignatureRefused):
        other.verify_event(body, signature)
    with pytest.raises(SignatureRefused):
        provider.verify_event(body, "t=1,v1=deadbeef")
