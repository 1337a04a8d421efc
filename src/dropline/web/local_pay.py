"""The local payment provider's tokenising endpoint: its stand-in for Stripe's own API, so the
demo and the tests take cards with no account anywhere.

``POST /pay/local/tokens`` takes a card (JSON: number, exp_month, exp_year, cvc) and answers
the provider's reference to it (``{"id": "pm_...", "card": {"last4": ...}}``); the page's script
(``/static/pay/local.js``) then sends only that reference to the shop. It belongs to the
provider, not to the shop's API: it is left out of ``/openapi.json``, reads no session, keeps
nothing but what the provider's ledger keeps of a token (how the card behaves when charged, its
last four digits and fingerprint) and logs nothing. The composition root mounts it only when
the local provider is the one configured.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dropline.payments.provider import CardRefused, CardToken
from dropline.web.deps import ServicesDep
from dropline.web.problems import problem_response

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
