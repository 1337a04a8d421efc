"""The local payment provider's tokenising endpoint: its stand-in for Stripe's own API, so the
demo and the tests take cards with no account anywhere.

``POST /pay/local/tokens`` takes a card (JSON: number, exp_month, exp_year, cvc) and answers
the provider's reference to it (``{"id": "pm_...", "card": {"last4": ...}}``); the page's script
(``/static/pay/local.js``) then sends only that reference to the shop. It belongs to the
provider, not to the shop's API: it is left out of ``/openapi.json``, reads no session, keeps
nothing but what the provider's ledger keeps of a token (how the card behaves when charged, its
last four digits and fingerprint) and logs nothing. The composition root mounts it only when
the local provider is the one configured.

``GET/POST /pay/local/card`` is the provider's hosted card page, the no-JavaScript path (what
a hosted payment page is to a real provider): a shop form sent without a payment method
reference is redirected here (``web.payment_page.hosted_card_entry``) with ``return_to``, a
path of the shop; the card typed here is tokenised and the browser goes back (303) to
``return_to`` with ``payment_method=pm_...``. A refused card is said beside its field and
nothing is kept.

``GET/POST /pay/local/authenticate`` is the provider's stand-in for the bank's 3-D Secure page:
a charge on the 3-D Secure test card waits (``requires_action``) until the shopper confirms or
refuses it here, with the charge's client secret; then the browser goes back (303) to
``return_to`` (the order's payment return), where the shop asks the provider for the outcome.
The pages' scripts and the no-JavaScript button both come here
(``LocalCardProvider.authentication_redirect``).
"""

from __future__ import annotations

from typing import Protocol

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from dropline.payments.provider import CardRefused, CardToken
from dropline.web.deps import ServicesDep
from dropline.web.payment_page import safe_return
from dropline.web.problems import problem_response
from dropline.web.templating import templates

__all__ = ["CardTokeniser", "router"]

router = APIRouter(include_in_schema=False)
MESSAGES = {"invalid_number": "the card number is not valid",
            "invalid_expiry": "the expiry date is not valid",
            "invalid_cvc": "the CVC is not valid"}


class CardTokeniser(Protocol):
    def tokenise_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str
                      ) -> CardToken: ...


class _Card(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=12, max_length=23)
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)
    cvc: str = Field(pattern=r"^[0-9]{3,4}$")


def _refused(code: str) -> JSONResponse:
    # Said without echoing any of the card back.
    return problem_response(402 if code not in MESSAGES else 422, {
        "type": "https://dropline.dev/problems/card-refused", "title": "Card refused",
        "status": 402 if code not in MESSAGES else 422,
        "detail": MESSAGES.get(code, "the card was refused"), "code": code})


@router.post("/pay/local/tokens", status_code=201)
def create_token(card: _Card, services: ServicesDep) -> JSONResponse:
    tokeniser: CardTokeniser = services.payments  # type: ignore[assignment]
    try:
        token = tokeniser.tokenise_card(number=card.number, exp_month=card.exp_month,
                                        exp_year=card.exp_year, cvc=card.cvc)
    except CardRefused as exc:
        return _refused(exc.decline_code)
    return JSONResponse({"id": token.reference, "object": "payment_method",
                         "card": {"last4": token.last4}}, status_code=201)


FIELDS = {"invalid_number": "number", "invalid_expiry": "exp_month", "invalid_cvc": "cvc"}
# A path, with the form typed before sealed in it (web.payment_page.hosted_card_entry).
ReturnTo = Annotated[str, Query(max_length=3000)]
CardField = Annotated[str, Form(max_length=30)]


def _card_page(request: Request, services: ServicesDep, return_to: str, *,
               error: str = "", field: str = "", status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, "pay/local_card.html", {
        "shop_name": services.settings.shop.name, "return_to": safe_return(return_to),
        "error": error, "field": field}, status_code=status_code)


@router.get("/pay/local/card", response_class=HTMLResponse)
def card_page(request: Request, services: ServicesDep, return_to: ReturnTo = "/") -> Response:
    return _card_page(request, services, return_to)


@router.post("/pay/local/card")
def take_card(request: Request, services: ServicesDep, number: CardField, exp_month: CardField,
              exp_year: CardField, cvc: CardField,
              return_to: Annotated[str, Form(max_length=3000)] = "/") -> Response:
    tokeniser: CardTokeniser = services.payments  # type: ignore[assignment]
    try:
        token = tokeniser.tokenise_card(
            number=number, exp_month=int(exp_month) if exp_month.isdigit() else 0,
            exp_year=int(exp_year) if exp_year.isdigit() else 0, cvc=cvc.strip())
    except CardRefused as exc:
        return _card_page(request, services, return_to, status_code=422,
                          error=MESSAGES.get(exc.decline_code, "the card was refused"),
                          field=FIELDS.get(exc.decline_code, "number"))
    target = safe_return(return_to)
    joiner = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{joiner}payment_method={token.reference}",
                            status_code=303)


class LocalBank(Protocol):
    def answer_bank(self, reference: str, *, client_secret: str, approved: bool) -> bool: ...


SecretQuery = Annotated[str, Query(max_length=200)]


def _bank_page(request: Request, services: ServicesDep, *, client_secret: str, return_to: str,
               status_code: int = 200, error: str = "") -> HTMLResponse:
    return templates.TemplateResponse(request, "pay/local_bank.html", {
        "shop_name": services.settings.shop.name, "client_secret": client_secret,
        "return_to": safe_return(return_to), "error": error}, status_code=status_code)


@router.get("/pay/local/authenticate", response_class=HTMLResponse)
def bank_page(request: Request, services: ServicesDep, client_secret: SecretQuery = "",
              return_to: ReturnTo = "/") -> Response:
    return _bank_page(request, services, client_secret=client_secret, return_to=return_to)


@router.post("/pay/local/authenticate")
def answer_bank(request: Request, services: ServicesDep,
                client_secret: Annotated[str, Form(max_length=200)],
                answer: Annotated[str, Form(pattern="^(confirm|refuse)$")],
                return_to: Annotated[str, Form(max_length=3000)] = "/") -> Response:
    """The shopper's answer: the waiting charge is decided (once: a charge decided or
    withdrawn meanwhile is left as it is) and the browser goes back to the shop, which reads
    the outcome from the provider."""
    bank: LocalBank = services.payments  # type: ignore[assignment]
    reference = client_secret.split("_secret_", 1)[0]
    if not bank.answer_bank(reference, client_secret=client_secret,
                            approved=answer == "confirm"):
        return _bank_page(request, services, client_secret=client_secret, return_to=return_to,
                          status_code=409, error="This payment is no longer waiting for you.")
    return RedirectResponse(safe_return(return_to), status_code=303)
