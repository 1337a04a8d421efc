"""The card provider's part of the pages that take a card (checkout, drop purchase, membership):
its script, its settings for that script, and the origins its script needs in that one page's
Content-Security-Policy.

    payment_page()     called by ``_card_fields.html``: which provider the card fields are for;
                       on the Stripe provider it marks the answer as a payment page, which
                       widens its policy (``web.security_headers.allow_sources``) to Stripe.js's
                       script, API and frames, and no other page's
    payment_scripts()  called at the end of ``base.html``: the provider's scripts. The local
                       provider's (``/static/pay/local.js``) on every page, as before; Stripe.js
                       and ``/static/pay/stripe.js`` only on a payment page

``/pay/stripe/setup-intents`` (mounted by the app on the Stripe provider) answers a SetupIntent's
client secret, for a Stripe.js without the Payment Element (localstripe's stand-in) to collect
the card into; the shop still receives only the PaymentMethod's id.

Without JavaScript (``hosted_card_entry``) a form goes on to the provider's hosted card page
and comes back to the page it came from with ``payment_method=pm_...``. What the shopper had
typed (name, address, email) never travels in a URL: it is sealed with the app's key
(``security.seal_at``, opened by ``returned_form`` for ``RETURN_WITHIN``) and the return
address carries only that. On Stripe the hosted page is a Checkout Session in setup mode, which
comes back to ``/pay/stripe/return``: the PaymentMethod is read from Stripe by the session's id
(never taken from the query) and only for the shopper who started it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Protocol, cast
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from jinja2 import pass_context
from markupsafe import Markup, escape

from dropline.config import PaymentSettings
from dropline.errors import DomainError
from dropline.payments.provider import CardToken, HostedCardEntry
from dropline.security import Unsealable, seal_at, unseal_within
from dropline.services import Services
from dropline.web.deps import OptionalCustomer, ServicesDep
from dropline.web.security_headers import allow_sources

__all__ = ["RETURN_WITHIN", "PaymentPage", "hosted_card_entry", "payment_page",
           "payment_scripts", "ready_card", "returned_form", "router", "safe_return",
           "shop_base_url", "stripe_sources"]

RETURN_WITHIN = timedelta(minutes=30)  # how long a sealed form survives the hosted card page
_FORM_PURPOSE = "hosted-card-form"

router = APIRouter(include_in_schema=False)
_MARK = "payment_page"  # in the request's state: this answer renders card fields
_STRIPE = "https://js.stripe.com"


@dataclass(frozen=True)
class PaymentPage:
    provider: str


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_sources(settings: PaymentSettings) -> dict[str, list[str]]:
    """What Stripe.js needs in a page's policy: its script's origin, the API it calls, and
    (Stripe's own) the frames of its Elements and of the bank's 3-D Secure challenge."""
    script = _origin(settings.stripe_js_url)
    api = _origin(settings.stripe_api_base) if settings.stripe_api_base else \
        "https://api.stripe.com"
    if script == _STRIPE:
        return {"script-src": [_STRIPE, "https://*.js.stripe.com"],
                "connect-src": [api, "https://api.stripe.com"],
                "frame-src": [_STRIPE, "https://*.js.stripe.com", "https://hooks.stripe.com"]}
    # A stand-in (localstripe): its script talks to the server it was loaded from.
    return {"script-src": [script], "connect-src": [script, api]}


def _settings(context: Any) -> tuple[Request | None, PaymentSettings | None]:
    request = context.get("request")
    if not isinstance(request, Request):
        return None, None
    return request, request.app.state.services.settings.payments


@pass_context
def payment_page(context: Any) -> PaymentPage:
    request, settings = _settings(context)
    if request is None or settings is None:
        return PaymentPage("local")
    if settings.provider == "stripe":
        request.scope.setdefault("state", {})[_MARK] = True
        allow_sources(request, stripe_sources(settings))
    return PaymentPage(settings.provider)


@pass_context
def payment_scripts(context: Any) -> Markup:
    request, settings = _settings(context)
    if settings is None or settings.provider != "stripe":
        return Markup('<script type="module" src="/static/pay/local.js"></script>')
    assert request is not None
    if not request.scope.get("state", {}).get(_MARK):
        return Markup("")
    # Stripe.js is a classic script (localstripe's stand-in reads document.currentScript),
    # run before the module that uses it.
    return Markup(
        f'<script src="{escape(settings.stripe_js_url)}"></script>\n'
        f'  <script type="module" src="/static/pay/stripe.js" '
        f'data-publishable-key="{escape(settings.stripe_publishable_key)}" '
        f'data-currency="{escape(request.app.state.services.settings.shop.currency.lower())}" '
        f'data-setup-url="/pay/stripe/setup-intents"></script>')


def safe_return(return_to: str) -> str:
    """A path of this site only (never ``//host`` or a scheme): a return address cannot be
    used to send a shopper elsewhere."""
    if not return_to.startswith("/") or return_to.startswith(("//", "/\\")) or any(
            c in return_to for c in "\r\n\\"):
        return "/"
    return return_to


def _owner(services: Services, customer_id: int) -> str:
    """The shop's opaque name for a shopper at the provider (a hosted page's owner): keyed
    with the app's secret, so it says nothing about the customer and cannot be forged."""
    return hmac.new(services.settings.web.secret_key.encode(),
                    f"hosted-card:{customer_id}".encode(), hashlib.sha256).hexdigest()[:32]


def shop_base_url(request: Request, services: Services) -> str:
    """Where the provider sends the browser back to (absolute): ``DROPLINE_PUBLIC_URL``, else
    the address the request named."""
    return services.settings.web.public_url or str(request.base_url).rstrip("/")


def hosted_card_entry(request: Request, services: Services, *, path: str,
                      form: dict[str, str], customer_id: int) -> RedirectResponse | None:
    """The no-JavaScript way to give a card: a form that arrived without a payment method
    reference is sent on (303) to the provider's hosted card page, which takes the card and
    comes back to ``path`` (a path of this site) with ``payment_method=pm_...``; the page
    there shows the card ready and what the shopper typed (``returned_form``), for them to
    confirm. ``form`` travels sealed (``returned=``), never in clear in a URL. The local
    provider's page is ``/pay/local/card`` (``web.local_pay``); Stripe's is a Checkout
    Session (``HostedCardEntry``), back through ``/pay/stripe/return``. None for a provider
    with neither."""
    return_to = path
    if form:
        sealed = seal_at(json.dumps(form), secret_key=services.settings.web.secret_key,
                         purpose=_FORM_PURPOSE, at=services.clock.now())
        return_to += ("&" if "?" in path else "?") + f"returned={quote(sealed, safe='')}"
    if hasattr(services.payments, "tokenise_card"):
        return RedirectResponse(f"/pay/local/card?return_to={quote(return_to, safe='')}",
                                status_code=303)
    if not hasattr(services.payments, "start_card_entry"):
        return None
    hosted = cast(HostedCardEntry, services.payments)
    base = shop_base_url(request, services)
    page = hosted.start_card_entry(
        success_url=f"{base}/pay/stripe/return?session_id={{CHECKOUT_SESSION_ID}}"
                    f"&return_to={quote(return_to, safe='')}",
        cancel_url=f"{base}{return_to}", owner=_owner(services, customer_id),
        currency=services.settings.shop.currency)
    return RedirectResponse(page, status_code=303)


def returned_form(services: Services, request: Request) -> dict[str, str]:
    """What the shopper had typed before the hosted card page (``hosted_card_entry``), from
    the return address's sealed ``returned``; empty when there is none, or it is stale (older
    than ``RETURN_WITHIN``), altered or sealed under another key."""
    sealed = request.query_params.get("returned", "")
    if not sealed:
        return {}
    try:
        form = json.loads(unseal_within(sealed, secret_key=services.settings.web.secret_key,
                                        purpose=_FORM_PURPOSE, at=services.clock.now(),
                                        max_age=RETURN_WITHIN))
    except (Unsealable, ValueError):
        return {}
    if not isinstance(form, dict):
        return {}
    return {str(k): str(v)[:200] for k, v in form.items()}


def ready_card(services: Services, reference: str) -> CardToken | None:
    """The card a hosted card page came back with (``?payment_method=``), or None for a
    reference the provider does not know (a stale or made-up link: the card fields show)."""
    if not reference:
        return None
    try:
        return services.payments.describe_card(reference[:100])
    except DomainError:
        return None


class CardSetup(Protocol):
    def create_card_setup(self) -> str: ...


@router.post("/pay/stripe/setup-intents", status_code=201)
def create_setup_intent(services: ServicesDep) -> JSONResponse:
    """A SetupIntent's client secret (the page's script confirms it with the card, in the
    browser, with Stripe); nothing of the shop's is read or written."""
    setup: CardSetup = services.payments  # type: ignore[assignment]
    return JSONResponse({"client_secret": setup.create_card_setup()}, status_code=201)


@router.get("/pay/stripe/return")
def stripe_card_return(services: ServicesDep, customer: OptionalCustomer,
                       session_id: Annotated[str, Query(max_length=200)] = "",
                       return_to: Annotated[str, Query(max_length=3000)] = "/") -> RedirectResponse:
    """Back from Stripe's hosted card page (the Checkout Session ``hosted_card_entry``
    started): the session's PaymentMethod is asked of Stripe and the browser goes on (303) to
    ``return_to`` with it, as from the local provider's page. A session unknown, unfinished or
    someone else's goes back to ``return_to`` without a card (the form asks again); nothing of
    the shop's is written."""
    target = safe_return(return_to)
    if customer is None:
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)
    hosted = cast(HostedCardEntry, services.payments)
    method = hosted.finish_card_entry(session_id, owner=_owner(services, customer.id))
    if method is None:
        return RedirectResponse(target, status_code=303)
    joiner = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{joiner}payment_method={quote(method, safe='')}",
                            status_code=303)
