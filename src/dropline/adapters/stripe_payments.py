"""Stripe behind the payment port (``dropline.payments.provider``), with the official SDK.

The card never reaches the shop: Stripe.js (or a Stripe reader) turns it into a PaymentMethod
(``pm_...``) and the shop charges that reference.

    describe_card   GET  /v1/payment_methods/{pm}: last4 and Stripe's card fingerprint
    charge          POST /v1/payment_intents, confirmed at once; 3-D Secure comes back as
                    ``requires_action`` with the intent's client secret for Stripe.js, and the
                    outcome later as a webhook (``payments.stripe_events``)
    refund          POST /v1/refunds against the intent, for any part of it
    save_card       a Customer, the PaymentMethod attached to it, and a SetupIntent confirmed
                    for off-session use; the saved token is ``cus_...:pm_...``
    charge_saved    an off-session PaymentIntent on the saved card; a bank that wants the
                    member present answers ``authentication_required`` (a decline code the
                    dunning notice can act on)
    verify_event    ``Stripe-Signature`` checked by the SDK (``Webhook.construct_event``)
    start_card_entry / finish_card_entry
                    the no-JavaScript card: a Checkout Session in ``mode=setup`` (Stripe's
                    hosted page), and on the way back its SetupIntent's PaymentMethod, read
                    from Stripe (``GET /v1/checkout/sessions/{id}``), never from the browser
    authentication_redirect
                    3-D Secure without JavaScript: the waiting PaymentIntent confirmed again
                    with ``return_url``; its ``next_action.redirect_to_url`` is the bank's page
    withdraw_charge a renewal held for the member is cancelled before it is tried anew
                    (``POST /v1/payment_intents/{id}/cancel``), or found paid

Every request that moves money carries an ``Idempotency-Key`` derived from Dropline's own key
(``stripe_key``): a retried or resumed charge is answered by Stripe from its memory (within its
24-hour window) and never taken twice. The SDK's own retries are off: ``payments.charging``
retries, with the same key. Network failures, rate limits and 5xx answers are
``ProviderUnavailable``; card errors are declines with Stripe's decline code.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe

from dropline.errors import ServiceUnavailable, UnknownPaymentMethod
from dropline.payments.provider import (
    CardRefused,
    CardToken,
    ChargeRequest,
    ChargeResult,
    ListedCharge,
    ProviderEvent,
    ProviderUnavailable,
    SavedCard,
    SignatureRefused,
    charge_each,
)

__all__ = ["StripeProvider", "stripe_key"]

_TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError)
_LOOKBACK = timedelta(days=2)  # how far back find_charge lists without the Search API
_BATCH_ATTEMPTS = 3  # tries of one batch charge Stripe does not answer (same key each time)
# Dropline's amounts are minor units of two-decimal currencies (dropline.money); Stripe counts
# these in whole units (zero-decimal) or thousandths (three-decimal), so an amount in them would
# be taken 100 times over, or a tenth of it: they are refused before any request.
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
                          "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def stripe_key(dropline_key: str) -> str:
    """The Stripe Idempotency-Key for one of Dropline's keys (payment, refund, charge attempt):
    a fixed prefix, so the same Dropline key always maps to the same Stripe key."""
    return f"dropline-{dropline_key}"


def _transient(exc: stripe.StripeError) -> bool:
    return isinstance(exc, _TRANSIENT) or (exc.http_status or 0) >= 500


def _decline(exc: stripe.StripeError) -> ChargeResult:
    error = exc.error
    reference = ""
    if error is not None:
        intent = getattr(error, "payment_intent", None)
        reference = (intent.get("id") if isinstance(intent, dict) else
                     getattr(intent, "id", None)) or getattr(error, "charge", None) or ""
    code = (getattr(error, "decline_code", None) or exc.code or "card_declined") if error \
        else (exc.code or "card_declined")
    return ChargeResult("declined", reference, code)


class StripeProvider:
    name = "stripe"

    def __init__(self, *, secret_key: str, webhook_secret: str = "", api_base: str = "",
                 timeout_seconds: float = 20.0, batch_concurrency: int = 8,
                 http_client: stripe.HTTPClient | None = None) -> None:
        """``http_client``: the SDK's transport (tests wrap it to see the requests it sends);
        by default the SDK's own with ``timeout_seconds``. ``batch_concurrency``: the most
        requests ``charge_many`` has in flight at once."""
        self._webhook_secret = webhook_secret
        self._batch_concurrency = batch_concurrency
        self._client = stripe.StripeClient(
            secret_key, base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,
            http_client=http_client or stripe.RequestsClient(timeout=timeout_seconds))

    # -- the port ----------------------------------------------------------------------------

    def describe_card(self, reference: str) -> CardToken:
        try:
            method = self._client.v1.payment_methods.retrieve(reference)
        except stripe.InvalidRequestError:
            raise UnknownPaymentMethod(
                "unknown payment method: create it with Stripe.js and send its id",
                field="payment_method") from None
        except stripe.StripeError as exc:
            if _transient(exc):
                raise ServiceUnavailable("the payment provider is not answering; retry",
                                         retry_after=5) from None
            raise
        card = method.card
        if card is None:
            raise UnknownPaymentMethod("only card payment methods are taken",
                                       field="payment_method")
        return CardToken(method.id, card.last4, card.fingerprint or "")

    def charge(self, *, amount: int, currency: str, card: CardToken,
               idempotency_key: str) -> ChargeResult:
        return self._confirm_intent({
            "amount": amount, "currency": currency.lower(), "payment_method": card.reference,
            "payment_method_types": ["card"], "confirm": True,
            "metadata": {"dropline_key": idempotency_key}}, idempotency_key)

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        """The outcome of the PaymentIntent made with this key, found by its ``dropline_key``
        metadata through Stripe's Search API (never charges); None when Stripe has none.
        Without the Search API, the recent list is scanned (``_find_in_list``)."""
        escaped = idempotency_key.replace("\\", "\\\\").replace("'", "\\'")
        try:
            found = self._client.v1.payment_intents.search(
                params={"query": f"metadata['dropline_key']:'{escaped}'", "limit": 1})
        except stripe.InvalidRequestError:
            return self._find_in_list(idempotency_key)
        except stripe.StripeError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        if not found.data:
            return None
        return _intent_outcome(found.data[0])

    def _find_in_list(self, idempotency_key: str) -> ChargeResult | None:
        """Where the Search API is not offered (some Stripe regions; localstripe), the
        PaymentIntents of the last ``_LOOKBACK`` are listed instead: a stranded payment is
        looked up minutes after its charge, well inside it (and inside Stripe's 24-hour
        idempotency window, after which its key would not replay anyway)."""
        now = datetime.now(UTC)
        for charge in self.list_charges(since=now - _LOOKBACK, until=now + timedelta(minutes=5)):
            if charge.idempotency_key == idempotency_key:
                if charge.status == "succeeded":
                    return ChargeResult("succeeded", charge.reference)
                if charge.status == "declined":
                    return self.charge_status(charge.reference)
                return None
        return None

    def charge_status(self, reference: str) -> ChargeResult | None:
        """The PaymentIntent's outcome (``GET /v1/payment_intents/{id}``): what the page's
        return after 3-D Secure settles by; None while Stripe is still deciding or for an id
        Stripe does not know (nothing is settled on a guess)."""
        if not reference.startswith("pi_"):
            return None
        try:
            intent = self._client.v1.payment_intents.retrieve(reference)
        except stripe.InvalidRequestError:
            return None
        except stripe.StripeError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        return _intent_outcome(intent)

    def list_charges(self, *, since: datetime, until: datetime) -> list[ListedCharge]:
        """Dropline's PaymentIntents created in [since, until) (``GET /v1/payment_intents``
        with ``created[gte]``/``created[lt]``, every page): those whose ``dropline_key``
        metadata names the Dropline key they were made with. A server that refuses the
        ``created`` filter (localstripe) is listed whole and filtered here."""
        window = {"gte": int(since.timestamp()), "lt": int(until.timestamp())}
        try:
            try:
                pages = self._client.v1.payment_intents.list(
                    params={"created": window, "limit": 100})  # type: ignore[typeddict-item]
            except stripe.InvalidRequestError:
                pages = self._client.v1.payment_intents.list(params={"limit": 100})
            intents = list(pages.auto_paging_iter())
        except stripe.StripeError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        listed = []
        for intent in intents:
            if not window["gte"] <= int(intent.created) < window["lt"]:
                continue
            outcome = _intent_outcome(intent)
            metadata = intent.to_dict().get("metadata") or {}
            listed.append(ListedCharge(
                intent.id, str(metadata.get("dropline_key", "")),
                outcome.status if outcome is not None else "pending",  # type: ignore[arg-type]
                int(intent.amount), str(intent.currency).upper(),
                datetime.fromtimestamp(int(intent.created), UTC)))
        return listed

    def authentication_secret(self, reference: str) -> tuple[str, str]:
        """What the member's page needs to confirm an off-session PaymentIntent their bank
        held (``authentication_required``) with Stripe.js, on-session: the intent's client
        secret and its PaymentMethod's id."""
        try:
            intent = self._client.v1.payment_intents.retrieve(reference)
        except stripe.StripeError as exc:
            raise ServiceUnavailable("the payment provider is not answering; retry",
                                     retry_after=5) from exc
        method = intent.to_dict().get("payment_method") or ""
        return str(intent.client_secret or ""), str(
            method.get("id", "") if isinstance(method, dict) else method)

    def create_card_setup(self) -> str:
        """A SetupIntent for the page to collect a card into (``confirmCardSetup`` in
        Stripe.js): its client secret. The page then sends the shop only the resulting
        PaymentMethod's id; a bank asking for 3-D Secure at set-up is answered in the page."""
        try:
            setup = self._client.v1.setup_intents.create(params={
                "usage": "on_session", "payment_method_types": ["card"]})
        except stripe.StripeError as exc:
            if _transient(exc):
                raise ServiceUnavailable("the payment provider is not answering; retry",
                                         retry_after=5) from None
            raise
        assert setup.client_secret is not None
        return setup.client_secret

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult]:
        """A drop batch's charges: Stripe has no batch API, so one PaymentIntent per request,
        each with its own idempotency key, at most ``batch_concurrency`` in flight (so a batch
        takes about one round trip per ``batch_concurrency`` charges, and Stripe's rate limit
        is not hammered). A charge Stripe does not answer is retried with its own key; if one
        still has no answer once every other has finished, ``ProviderUnavailable`` is raised
        and the batch stays pending: each charge made is remembered by Stripe under its key,
        so the batch's retry or the recovery job settles it without charging twice."""
        if len(requests) <= 1 or self._batch_concurrency == 1:
            return charge_each(self, requests)

        def one(request: ChargeRequest) -> ChargeResult | None:
            for _ in range(_BATCH_ATTEMPTS):
                try:
                    return self.charge(amount=request.amount, currency=request.currency,
                                       card=request.card,
                                       idempotency_key=request.idempotency_key)
                except ProviderUnavailable:
                    continue
            return None

        with ThreadPoolExecutor(max_workers=min(self._batch_concurrency, len(requests)),
                                thread_name_prefix="stripe-batch") as pool:
            results = list(pool.map(one, requests))
        missing = sum(result is None for result in results)
        if missing:
            raise ProviderUnavailable(f"{missing} of {len(requests)} charges had no answer; "
                                      "retry the batch (same keys)")
        return [result for result in results if result is not None]

    def refund(self, *, charge_reference: str, amount: int, currency: str,
               idempotency_key: str) -> str:
        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": charge_reference, "amount": amount,
                        "metadata": {"dropline_key": idempotency_key}},
                options={"idempotency_key": stripe_key(idempotency_key)})
        except stripe.StripeError as exc:
            if _transient(exc):
                raise ProviderUnavailable(str(exc)) from exc
            raise
        return refund.id

    def save_card(self, *, card: CardToken) -> SavedCard:
        try:
            customer = self._client.v1.customers.create(
                params={"metadata": {"dropline_card": card.fingerprint}})
            self._client.v1.payment_methods.attach(card.reference,
                                                   params={"customer": customer.id})
            setup = self._client.v1.setup_intents.create(params={
                "customer": customer.id, "usage": "off_session",
                "payment_method_types": ["card"]})
            setup = self._client.v1.setup_intents.confirm(
                setup.id, params={"payment_method": card.reference})
        except stripe.CardError as exc:
            raise CardRefused(_decline(exc).decline_code or "card_declined") from exc
        except stripe.StripeError as exc:
            if _transient(exc):
                raise ProviderUnavailable(str(exc)) from exc
            raise
        if setup.status != "succeeded":  # 3-D Secure at set-up: the member must be present
            raise CardRefused("authentication_required")
        return SavedCard(token=f"{customer.id}:{card.reference}", last4=card.last4,
                         fingerprint=card.fingerprint)

    def charge_saved(self, *, amount: int, currency: str, token: str,
                     idempotency_key: str) -> ChargeResult:
        customer, _, method = token.partition(":")
        result = self._confirm_intent({
            "amount": amount, "currency": currency.lower(), "customer": customer,
            "payment_method": method, "payment_method_types": ["card"], "confirm": True,
            "off_session": True, "metadata": {"dropline_key": idempotency_key}},
            idempotency_key)
        if result.status == "requires_action":
            # Off-session, nobody can authenticate now (Stripe itself answers a card error
            # with this code; a test server may leave the intent waiting instead).
            return ChargeResult("declined", result.reference, "authentication_required")
        return result

    # -- the no-JavaScript paths -------------------------------------------------------------

    def start_card_entry(self, *, success_url: str, cancel_url: str, owner: str,
                         currency: str) -> str:
        """Stripe's hosted card page for a shopper without JavaScript: a Checkout Session in
        ``mode=setup`` (it collects a card and charges nothing). ``success_url`` should carry
        ``{CHECKOUT_SESSION_ID}``, which Stripe fills in; ``owner`` (the shop's opaque name
        for the shopper) is kept as the session's ``client_reference_id``, so only the
        shopper who started it can use the card it collects. Returns the page's address."""
        try:
            session = self._client.v1.checkout.sessions.create(params={
                "mode": "setup", "currency": currency.lower(),
                "payment_method_types": ["card"], "success_url": success_url,
                "cancel_url": cancel_url, "client_reference_id": owner})
        except stripe.StripeError as exc:
            raise ServiceUnavailable("the payment provider is not answering; retry",
                                     retry_after=5) from exc
        assert session.url is not None
        return session.url

    def finish_card_entry(self, session_id: str, *, owner: str) -> str | None:
        """The PaymentMethod the shopper gave on the hosted page, as Stripe reports it: the
        session's SetupIntent's, once the session is complete and was started for ``owner``;
        None for an unknown, unfinished or someone else's session."""
        if not session_id.startswith("cs_"):
            return None
        try:
            session = self._client.v1.checkout.sessions.retrieve(
                session_id, params={"expand": ["setup_intent"]})
        except stripe.InvalidRequestError:
            return None
        except stripe.StripeError as exc:
            raise ServiceUnavailable("the payment provider is not answering; retry",
                                     retry_after=5) from exc
        data = session.to_dict()
        setup = data.get("setup_intent") or {}
        if data.get("status") != "complete" or data.get("client_reference_id") != owner \
                or not isinstance(setup, dict) or setup.get("status") != "succeeded":
            return None
        method = setup.get("payment_method") or ""
        return str(method.get("id", "") if isinstance(method, dict) else method) or None

    def authentication_redirect(self, reference: str, *, return_url: str) -> str | None:
        """The bank's page for a PaymentIntent waiting for 3-D Secure, for a browser without
        JavaScript: the intent is confirmed again with ``return_url`` (where the bank sends
        the shopper back, the order's payment return) and Stripe answers
        ``next_action.redirect_to_url``. An intent that already names a redirect (confirmed
        with a ``return_url`` before) is followed as it is. None when the intent waits for
        nothing (already decided: the return settles it)."""
        try:
            intent = self._client.v1.payment_intents.retrieve(reference)
            action = intent.to_dict().get("next_action") or {}
            if intent.status == "requires_action" and action.get("type") == "redirect_to_url":
                return str(action["redirect_to_url"]["url"])
            intent = self._client.v1.payment_intents.confirm(
                reference, params={"return_url": return_url})
        except stripe.InvalidRequestError:
            return None
        except stripe.StripeError as exc:
            raise ServiceUnavailable("the payment provider is not answering; retry",
                                     retry_after=5) from exc
        action = intent.to_dict().get("next_action") or {}
        if intent.status != "requires_action" or action.get("type") != "redirect_to_url":
            return None
        return str(action["redirect_to_url"]["url"])

    def withdraw_charge(self, reference: str) -> ChargeResult | None:
        """Withdraws a PaymentIntent still waiting for its customer (a renewal held for
        authentication), so that it can no longer succeed: ``POST .../cancel``. Stripe refuses
        to cancel one that has succeeded (or is processing); then the intent's outcome is
        returned instead. Returns ``succeeded`` (paid with it: charge nothing new),
        ``declined`` (cancelled now or failed before: a new attempt is safe) or None (still
        deciding: try later)."""
        if not reference.startswith("pi_"):
            return ChargeResult("declined", reference, "withdrawn")
        try:
            intent = self._client.v1.payment_intents.cancel(reference)
        except stripe.InvalidRequestError:
            intent = None
        except stripe.StripeError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        if intent is None:
            try:
                intent = self._client.v1.payment_intents.retrieve(reference)
            except stripe.InvalidRequestError:
                return ChargeResult("declined", reference, "withdrawn")  # Stripe has no such
            except stripe.StripeError as exc:
                raise ProviderUnavailable(str(exc)) from exc
        if intent.status == "canceled":
            return ChargeResult("declined", intent.id, "withdrawn")
        return _intent_outcome(intent)

    # -- webhooks ----------------------------------------------------------------------------

    def verify_event(self, payload: bytes, signature: str) -> ProviderEvent:
        """The event in a webhook request, once its ``Stripe-Signature`` verifies with the
        endpoint's secret (and its timestamp is within the SDK's tolerance); raises
        ``SignatureRefused`` otherwise."""
        if not self._webhook_secret:
            raise SignatureRefused("no webhook secret is configured")
        try:
            event = stripe.Webhook.construct_event(payload.decode("utf-8"), signature,
                                                   self._webhook_secret)
        except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
            raise SignatureRefused(str(exc)) from None
        return _provider_event(event.to_dict())

    # -- internals ---------------------------------------------------------------------------

    def _confirm_intent(self, params: dict[str, Any], idempotency_key: str) -> ChargeResult:
        if str(params["currency"]).upper() in ZERO_DECIMAL | THREE_DECIMAL:
            return ChargeResult("declined", "", "unsupported_currency")
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": stripe_key(idempotency_key)})
        except stripe.CardError as exc:
            return _decline(exc)
        except stripe.StripeError as exc:
            if _transient(exc):
                raise ProviderUnavailable(str(exc)) from exc
            if isinstance(exc, stripe.InvalidRequestError) and exc.code == "resource_missing":
                return ChargeResult("declined", "", "unknown_payment_method")
            raise
        if intent.status == "succeeded":
            return ChargeResult("succeeded", intent.id)
        if intent.status in ("requires_action", "processing"):
            # Nothing decided yet: the shopper authenticates (Stripe.js, with the secret) or
            # the bank is still at work; the outcome comes as a webhook.
            return ChargeResult("requires_action", intent.id,
                                client_secret=intent.client_secret)
        error = intent.last_payment_error
        code = (error.decline_code or error.code) if error is not None else None
        return ChargeResult("declined", intent.id, code or "card_declined")


def _intent_outcome(intent: Any) -> ChargeResult | None:
    """A PaymentIntent's decided outcome; None while it is still deciding (requires_action,
    processing): its webhook, or the shopper's return, settles it later."""
    if intent.status == "succeeded":
        return ChargeResult("succeeded", intent.id)
    if intent.status in ("requires_payment_method", "canceled"):
        # Stripe's objects raise AttributeError for a field the answer left out.
        error = intent.to_dict().get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code")
        if code is None:  # no error: the shopper failed (or abandoned) 3-D Secure
            code = "authentication_failed" if intent.status == "requires_payment_method" \
                else "card_declined"
        return ChargeResult("declined", intent.id, code)
    return None


def _provider_event(event: dict[str, Any]) -> ProviderEvent:
    """What Dropline reads of a Stripe event: its id and type, and for payment events the
    PaymentIntent, amount and codes it is about."""
    obj = event.get("data", {}).get("object", {}) or {}
    kind = obj.get("object")
    intent = (obj.get("id") if kind == "payment_intent" else obj.get("payment_intent")) or ""
    if isinstance(intent, dict):
        intent = intent.get("id", "")
    error = obj.get("last_payment_error") or {}
    return ProviderEvent(
        id=str(event.get("id", "")), type=str(event.get("type", "")),
        payment_reference=str(intent), created=int(event.get("created") or 0),
        amount=int(obj.get("amount_refunded") if kind == "charge" else obj.get("amount") or 0),
        decline_code=error.get("decline_code") or error.get("code"),
        dispute_reason=obj.get("reason") if kind == "dispute" else None)
