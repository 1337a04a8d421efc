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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from jinja2 import pass_context
from markupsafe import Markup, escape

from dropline.config import PaymentSettings
from dropline.errors import DomainError
from dropline.payments.provider import CardToken
from dropline.services import Services
from dropline.web.deps import ServicesDep
from dropline.web.security_headers import allow_sources

__all__ = ["PaymentPage", "hosted_card_entry", "payment_page", "payment_scripts", "ready_card",
           "router", "stripe_sources"]

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


def hosted_card_entry(services: Services, return_to: str) -> RedirectResponse | None:
    """The no-JavaScript way to give a card: a form that arrived without a payment method
    reference is sent on (303) to the provider's hosted card page, which takes the card and
    comes back to ``return_to`` (a path of this site) with ``payment_method=pm_...``; the page
    there shows the card ready and the shopper confirms. The local provider's page is
    ``/pay/local/card`` (``web.local_pay``); None for a provider without one here (Stripe's
    hosted Checkout is not wired: its pages need JavaScript)."""
    if not hasattr(services.payments, "tokenise_card"):
        return None
    return RedirectResponse(f"/pay/local/card?return_to={quote(return_to, safe='')}",
                            status_code=303)


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
