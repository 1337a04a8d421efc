"""Cart, checkout and order pages: private (``no-store``), plain forms that POST and redirect,
calling the same services and flows as the JSON API. The checkout page's script
(``/static/pwa/checkout.js``) turns the same form into an offline-first, idempotent
``POST /api/v1/checkout`` through the outbox (``/static/pwa/outbox.js``)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from dropline.carts import service as carts
from dropline.carts.models import Cart, CartStatus
from dropline.discounts.rules import FIELD as DISCOUNT_FIELD
from dropline.errors import (
    DomainError,
    InvalidInput,
    NotFound,
    PaymentDeclined,
    PaymentRequiresAction,
)
from dropline.fulfilment.service import (
    LineRequest,
    Steering,
    booked_window,
    decide_with_options,
    resolve_destination,
)
from dropline.invoices import documents as invoice_documents
from dropline.invoices import service as invoices
from dropline.orders import flows
from dropline.orders import service as orders
from dropline.orders.quote import CheckoutQuote, quote_checkout
from dropline.orders.schemas import AddressIn
from dropline.orders.shipments import order_shipments
from dropline.payment_events import settle_from_provider
from dropline.payments.provider import CardToken
from dropline.problem_json import problem_headers
from dropline.schemas import IdForm, IdPath
from dropline.tax.rules import refund_tax
from dropline.web.caching import private_response
from dropline.web.deps import (
    OptionalCustomer,
    PaymentFormDep,
    Principal,
    Services,
    ServicesDep,
)
from dropline.web.payment_page import hosted_card_entry, ready_card, returned_form
from dropline.web.templating import templates
from dropline.web.throttle import record_decline, refuse_cooling_card

router = APIRouter(include_in_schema=False)
# How each fulfilment path (orders.fulfilment_path) reads to a shopper.
FULFILMENT_PATHS = {"central": "Standard delivery from our warehouse",
                    "hub-window": "Delivered by our own van from a local hub, in your window",
                    "pop-up": "Bought at our pop-up shop"}
CART_COOKIE = "dl_cart"
_UUID = re.compile(r"^[0-9a-f-]{36}$")
Short = Annotated[str, Form(max_length=200)]
# Fields of the checkout form whose refusal is shown beside them (others above the form).
FORM_FIELDS = (DISCOUNT_FIELD, "vat_number")


def current_cart(session: Session, request: Request, customer: Principal | None) -> Cart | None:
    """The cart named by the cart cookie, if it is still open and this visitor may see it."""
    cart_id = request.cookies.get(CART_COOKIE, "")
    if not _UUID.match(cart_id):
        return None
    try:
        cart = carts.load_cart(session, cart_id=cart_id,
                               customer_id=customer.id if customer else None)
    except NotFound:
        return None
    return cart if cart.status is CartStatus.open else None


def _view(session: Session, services: Services, cart: Cart | None) -> carts.CartView | None:
    if cart is None:
        return None
    return carts.view_cart(session, cart=cart,
                           flat_shipping=services.settings.shop.flat_shipping_amount,
                           free_shipping_threshold=services.settings.shop.free_shipping_threshold)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200
          ) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    private_response(response)
    return response


def _sign_in(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={next_path}", status_code=303)


# --- cart -------------------------------------------------------------------------------------


def _quote(session: Session, services: Services, customer: Principal | None,
           view: carts.CartView | None, *, delivery: str = "", postcode: str = "",
           discount_code: str = "") -> tuple[CheckoutQuote | None, str]:
    """The total this visitor would pay (a signed-in member at the member price), with the
    delivery picked (``delivery`` is a window id, or empty for standard delivery) and the
    discount code typed; a refused code is quoted without it, and why is returned too."""
    if view is None or not view.lines or customer is None:
        return None, ""
    choice = flows.DeliveryChoice(window_id=int(delivery)) if delivery.isdigit() else None

    def quote(code: str) -> CheckoutQuote:
        return quote_checkout(session, clock=services.clock, settings=services.settings,
                              policy=services.checkout, customer_id=customer.id, view=view,
                              delivery=choice, postcode=postcode, discount_code=code)

    try:
        return quote(discount_code), ""
    except DomainError as exc:
        if not discount_code or exc.extensions.get("field") != DISCOUNT_FIELD:
            raise
        return quote(""), exc.detail


def _cart_page(request: Request, services: Services, customer: Principal | None, *,
               error: str = "", status_code: int = 200) -> HTMLResponse:
    with services.db.transaction() as session:
        view = _view(session, services, current_cart(session, request, customer))
        quote, _ = _quote(session, services, customer, view)
    return _page(request, "cart.html", {"shop_name": services.settings.shop.name,
                                        "view": view, "quote": quote, "error": error},
                 status_code)


@router.get("/cart")
def cart_page(request: Request, services: ServicesDep, customer: OptionalCustomer) -> Response:
    return _cart_page(request, services, customer)


@router.post("/cart/lines")
def add_to_cart(request: Request, services: ServicesDep, customer: OptionalCustomer,
                variant_id: IdForm,
                quantity: Annotated[int, Form(ge=0, le=99)] = 1,
                mode: Annotated[str, Form(pattern="^(add|set)$")] = "add") -> Response:
    """``add`` adds to what is in the cart (the product page); ``set`` sets it (the cart)."""
    try:
        with services.db.transaction() as session:
            cart = current_cart(session, request, customer) or carts.create_cart(
                session, clock=services.clock, currency=services.settings.shop.currency,
                customer_id=customer.id if customer else None)
            had = next((line.quantity for line in carts.view_cart(
                session, cart=cart, flat_shipping=0, free_shipping_threshold=0).lines
                if line.variant_id == variant_id), 0)
            carts.set_line(session, clock=services.clock, cart=cart, variant_id=variant_id,
                           quantity=quantity + had if mode == "add" else quantity)
            cart_id = cart.id
    except DomainError as exc:
        return _cart_page(request, services, customer, error=exc.detail, status_code=exc.status)
    response = RedirectResponse("/cart", status_code=303)
    response.set_cookie(CART_COOKIE, cart_id, max_age=30 * 86400, samesite="lax",
                        httponly=True, secure=services.settings.web.cookie_secure)
    return response


# --- checkout ---------------------------------------------------------------------------------


def delivery_windows(session: Session, services: Services, lines: Sequence[tuple[int, int]],
                     postcode: str) -> list[Any]:
    """The hub windows the fulfilment module offers for these (variant, quantity) lines and
    postcode (eligible ones), or none when it offers none (no hub nearby, unknown postcode,
    no stock there). The cart's checkout page and a drop's buy form list them."""
    if not postcode:
        return []
    try:
        destination = resolve_destination(geocoder=services.geocoder, postcode=postcode)
        _, options = decide_with_options(
            session, lines=[LineRequest(variant_id, quantity) for variant_id, quantity in lines],
            destination=destination, at=services.clock.now(),
            steering=Steering() if services.settings.fulfilment.steering else None)
    except DomainError:
        return []
    return [o for o in options.options if o.window_id is not None and o.eligible]


def _checkout_page(request: Request, services: Services, customer: Principal, *,
                   postcode: str = "", error: str = "", field: str = "",
                   form: dict[str, str] | None = None, status_code: int = 200,
                   card: CardToken | None = None) -> Response:
    """The checkout page; ``error`` with a ``field`` is shown beside that field."""
    form = form or {"postcode": postcode}
    with services.db.transaction() as session:
        view = _view(session, services, current_cart(session, request, customer))
        if view is None or not view.lines:
            return RedirectResponse("/cart", status_code=303)
        windows = delivery_windows(session, services, [(line.variant_id, line.quantity)
                                                       for line in view.lines], postcode)
        offered = {str(w.window_id) for w in windows}
        delivery = form.get("delivery", "") if form.get("delivery", "") in offered else ""
        code = form.get("discount_code", "")
        quote, code_error = _quote(session, services, customer, view, delivery=delivery,
                                   postcode=postcode, discount_code=code)
    if code_error and not error:
        error, field = code_error, DISCOUNT_FIELD
    return _page(request, "checkout.html", {
        "shop_name": services.settings.shop.name, "view": view, "windows": windows,
        "postcode": postcode, "error": error, "field": field,
        "form": {**form, "delivery": delivery},
        "form_key": str(uuid.uuid4()), "customer": customer, "quote": quote,
        "card_ready": card,
    }, status_code)


@router.get("/checkout")
def checkout_page(request: Request, services: ServicesDep, customer: OptionalCustomer,
                  postcode: Annotated[str, Query(max_length=16)] = "",
                  delivery: Annotated[str, Query(max_length=20)] = "",
                  discount_code: Annotated[str, Query(max_length=40)] = "") -> Response:
    """``postcode`` lists the hub windows; ``delivery`` (a window id, from the same form) prices
    the total with it, and ``discount_code`` applies a code (a refused one is named beside its
    field): the no-JavaScript way to see the total change."""
    if customer is None:
        return _sign_in("/checkout")
    postcode = postcode.strip().upper()
    form = {"postcode": postcode, "delivery": delivery,
            "discount_code": discount_code.strip()}
    # Back from the provider's hosted card page (no JavaScript): the card ready, and what the
    # shopper had typed, for them to confirm.
    card = ready_card(services, request.query_params.get("payment_method", ""))
    if card is not None:
        typed = returned_form(services, request)
        form |= {name: typed.get(name, form.get(name, ""))
                 for name in (*ADDRESS_FIELDS, "postcode", "delivery", "discount_code",
                              "vat_number")}
        postcode = form["postcode"].strip().upper()
    return _checkout_page(request, services, customer, postcode=postcode, form=form,
                          card=card)


def _inputs(form: dict[str, str]) -> tuple[dict[str, Any], flows.DeliveryChoice | None]:
    try:
        address = AddressIn(name=form["name"], line1=form["line1"], line2=form["line2"],
                            city=form["city"], postcode=form["postcode"],
                            country=form["country"] or "GB")
    except (ValidationError, ValueError):
        raise InvalidInput("check the address") from None
    delivery = None
    if form["delivery"] not in ("", "central"):
        if not form["delivery"].isdigit():
            raise InvalidInput("pick a delivery option", field="delivery")
        delivery = flows.DeliveryChoice(window_id=int(form["delivery"]))
    return address.model_dump(), delivery


@router.post("/checkout")
def place_order(request: Request, services: ServicesDep, customer: OptionalCustomer,
                key: Annotated[str, Form(max_length=64)], name: Short, line1: Short,
                city: Short, postcode: Short, payment: PaymentFormDep, line2: Short = "",
                country: Short = "GB", delivery: Short = "central",
                discount_code: Annotated[str, Form(max_length=40)] = "",
                vat_number: Annotated[str, Form(max_length=24)] = "") -> Response:
    """The checkout form without the offline outbox. The card was tokenised in the page; the
    form's key (fresh per page) makes a double submit the same attempt: the flow finds the
    order by its checkout reference and does not charge again."""
    if customer is None:
        return _sign_in("/checkout")
    form = {"name": name, "line1": line1, "line2": line2, "city": city, "postcode": postcode,
            "country": country, "delivery": delivery, "discount_code": discount_code.strip(),
            "vat_number": vat_number.strip()}
    if payment.missing:  # sent without JavaScript: the card is given at the provider's page
        hosted = hosted_card_entry(request, services, path="/checkout", form=form,
                                   customer_id=customer.id)
        if hosted is not None:
            return hosted
    if payment.refusal is not None:
        return _checkout_page(request, services, customer, postcode=postcode, form=form,
                              error=payment.refusal, status_code=422)
    with services.db.transaction() as session:
        cart = current_cart(session, request, customer)
        cart_id = cart.id if cart else None
    if cart_id is None:
        existing = _order_for_key(services, customer, key)
        if existing is not None:  # the cart was checked out by this very form: a resubmit
            return RedirectResponse(f"/orders/{existing}", status_code=303)
        return RedirectResponse("/cart", status_code=303)
    fingerprint = ""
    try:
        address, choice = _inputs(form)
        card = services.payments.describe_card(payment.reference)
        fingerprint = card.fingerprint
        refuse_cooling_card(services, fingerprint)  # card testing (web.throttle)
        order_id = flows.checkout(
            services.db, clock=services.clock, settings=services.settings,
            provider=services.payments, policy=services.checkout,
            request=flows.CheckoutRequest(
                customer_id=customer.id, cart_id=cart_id, card=card, shipping_address=address,
                checkout_reference=_reference(customer, key), delivery=choice,
                discount_code=discount_code.strip(), vat_number=vat_number.strip()),
            vat_checker=services.vat_checker)
    except PaymentRequiresAction as exc:  # the bank asks the shopper: its own page
        return RedirectResponse(f"/orders/{int(exc.extensions['order_id'])}/confirm-payment",
                                status_code=303)
    except DomainError as exc:
        if isinstance(exc, PaymentDeclined):
            record_decline(services, request, customer.id, fingerprint)
        page = _checkout_page(request, services, customer, postcode=postcode, form=form,
                              error=exc.detail, status_code=exc.status,
                              field=str(exc.extensions.get("field", ""))
                              if exc.extensions.get("field") in FORM_FIELDS else "")
        page.headers.update(problem_headers(exc))  # Retry-After on a cool-down
        return page
    for hook in services.after_commit:
        hook()
    response = RedirectResponse(f"/orders/{order_id}?placed=1", status_code=303)
    response.delete_cookie(CART_COOKIE)
    return response


ADDRESS_FIELDS = ("name", "line1", "line2", "city", "country")


def _reference(customer: Principal, key: str) -> str:
    return "page-" + hashlib.sha256(f"{customer.id}:{key}".encode()).hexdigest()[:48]


def _order_for_key(services: Services, customer: Principal, key: str) -> int | None:
    with services.db.transaction() as session:
        order = orders.find_by_checkout_reference(session, _reference(customer, key))
        return order.id if order is not None and order.customer_id == customer.id else None


# --- orders -----------------------------------------------------------------------------------


@router.get("/orders/{order_id}/payment-return")
def payment_return(order_id: IdPath, services: ServicesDep,
                   customer: OptionalCustomer) -> Response:
    """Where the shopper comes back to the order after authenticating with their bank (3-D
    Secure in the page; Stripe's ``return_url`` appends ``payment_intent`` and more, which are
    not read): the order's pending payment is settled by what the provider says of it, then
    the order page. Settling is idempotent, so a reload or a webhook first changes nothing."""
    if customer is None:
        return _sign_in(f"/orders/{order_id}")
    with services.db.transaction() as session:
        try:
            orders.get_order(session, order_id, customer_id=customer.id)
        except NotFound:
            return RedirectResponse(f"/orders/{order_id}", status_code=303)
    if settle_from_provider(services.db, clock=services.clock, provider=services.payments,
                            order_id=order_id, policy=services.checkout).startswith("settled"):
        for hook in services.after_commit:
            hook()
    return RedirectResponse(f"/orders/{order_id}?placed=1", status_code=303)


@router.get("/orders/{order_id}")
def order_page(order_id: IdPath, request: Request, services: ServicesDep,
               customer: OptionalCustomer,
               placed: Annotated[int, Query(ge=0, le=1)] = 0) -> Response:
    if customer is None:
        return _sign_in(f"/orders/{order_id}")
    with services.db.transaction() as session:
        try:
            detail = orders.order_detail(session, orders.get_order(
                session, order_id, customer_id=customer.id))
        except NotFound:
            return _page(request, "not_found.html", {"shop_name": services.settings.shop.name,
                                                     "what": "order"}, 404)
        timeline = orders.order_timeline(session, order_id)
        parcels = order_shipments(session, order_id)
        window = booked_window(session, order_id)
        invoice = invoices.invoice_of(session, order_id)
    order = detail.order
    response = _page(request, "order.html", {
        "shop_name": services.settings.shop.name, "detail": detail, "placed": bool(placed),
        "refunded_tax": refund_tax(order.refunded_amount, total_amount=order.total_amount,
                                   tax_amount=order.tax_amount),
        "invoice": invoice.reference if invoice else None,
        "timeline": timeline, "parcels": parcels,
        "window": window, "path_words": FULFILMENT_PATHS.get(
            detail.order.fulfilment_path, detail.order.fulfilment_path.replace("-", " "))})
    if placed:
        response.delete_cookie(CART_COOKIE)
    return response


@router.get("/orders/{order_id}/invoice.pdf")
def order_invoice(order_id: IdPath, request: Request, services: ServicesDep,
                  customer: OptionalCustomer) -> Response:
    """The shopper's own order's invoice, once the shop has issued it (a GET issues nothing)."""
    if customer is None:
        return _sign_in(f"/orders/{order_id}")
    with services.db.transaction() as session:
        try:
            orders.get_order(session, order_id, customer_id=customer.id)
        except NotFound:
            invoice = None
        else:
            invoice = invoices.invoice_of(session, order_id)
    if invoice is None:
        return _page(request, "not_found.html", {"shop_name": services.settings.shop.name,
                                                 "what": "invoice"}, 404)
    response = Response(invoice_documents.invoice_pdf(
        reference=invoice.reference, currency=invoice.currency, issued_at=invoice.issued_at,
        content=invoice.content), media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{invoice.reference}.pdf"'})
    private_response(response)
    return response
