"""Confirming an order's payment with the shopper's bank (3-D Secure), the shop's side.

    GET  /orders/{id}/confirm-payment       the page for an order whose payment waits for the
                                            bank (``_confirm_payment.html``): Stripe.js confirms
                                            it in the page; a button sends a browser without
                                            JavaScript (or on the local provider) to the bank
    POST /orders/{id}/bank-authentication   that button: the bank's page for the payment
                                            (``BankRedirect.authentication_redirect``: on Stripe
                                            the PaymentIntent confirmed with ``return_url``, whose
                                            ``next_action.redirect_to_url`` is followed, 303)

Both come back to ``/orders/{id}/payment-return`` (``web.shop``), which settles the order by
what the provider says, never by the browser's word. The offline checkout sends the shopper to
the first when its replayed order answers ``payment-requires-action``; the cart checkout
without JavaScript redirects there too. The composition root mounts this router for a provider
with a bank redirect (both the local provider and Stripe).
"""

from __future__ import annotations

from typing import Protocol, cast

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from dropline.errors import NotFound
from dropline.orders import service as orders
from dropline.payments.charging import latest_payment
from dropline.payments.models import PaymentStatus
from dropline.payments.provider import BankRedirect
from dropline.schemas import IdPath
from dropline.services import Services
from dropline.web.caching import private_response
from dropline.web.deps import OptionalCustomer, ServicesDep
from dropline.web.payment_page import shop_base_url
from dropline.web.templating import templates

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


class HeldSecrets(Protocol):
    def authentication_secret(self, reference: str) -> tuple[str, str]: ...


def _waiting_reference(services: Services, order_id: int, customer_id: int) -> str | None:
    """The provider's reference of the customer's order's payment, if it waits for the bank."""
    with services.db.transaction() as session:
        try:
            orders.get_order(session, order_id, customer_id=customer_id)
        except NotFound:
            return None
        payment = latest_payment(session, order_id)
        if payment.status is not PaymentStatus.pending or not payment.provider_ref:
            return None
        return payment.provider_ref


def _return_path(order_id: int) -> str:
    return f"/orders/{order_id}/payment-return"


@router.get("/orders/{order_id}/confirm-payment")
def confirm_payment_page(order_id: IdPath, request: Request, services: ServicesDep,
                         customer: OptionalCustomer) -> Response:
    if customer is None:
        return RedirectResponse(f"/sign-in?next=/orders/{order_id}/confirm-payment",
                                status_code=303)
    reference = _waiting_reference(services, order_id, customer.id)
    if reference is None:  # nothing waits (decided, or not this customer's): the order page
        return RedirectResponse(f"/orders/{order_id}", status_code=303)
    secret, method = cast(HeldSecrets, services.payments).authentication_secret(reference)
    response = templates.TemplateResponse(request, "confirm_payment.html", {
        "shop_name": services.settings.shop.name, "order_id": order_id,
        "confirm": {"client_secret": secret, "return_to": _return_path(order_id),
                    "bank_action": f"/orders/{order_id}/bank-authentication"}})
    private_response(response)
    return response


@router.post("/orders/{order_id}/bank-authentication")
def bank_authentication(order_id: IdPath, request: Request, services: ServicesDep,
                        customer: OptionalCustomer) -> Response:
    if customer is None:
        return RedirectResponse(f"/sign-in?next=/orders/{order_id}", status_code=303)
    reference = _waiting_reference(services, order_id, customer.id)
    if reference is None:
        return RedirectResponse(f"/orders/{order_id}", status_code=303)
    bank = cast(BankRedirect, services.payments).authentication_redirect(
        reference, return_url=f"{shop_base_url(request, services)}{_return_path(order_id)}")
    # None: the payment waits for nothing any more; the return settles it as it stands.
    return RedirectResponse(bank or _return_path(order_id), status_code=303)
