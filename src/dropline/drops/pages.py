"""The drop page and its no-JavaScript actions.

``GET /drops/{ref}`` is public and edge-cacheable (``web.caching``): it shows the drop's state
as of its render (countdown, early access, live, sold out with the waitlist form) and nothing
about the visitor, so the whole crowd can be served one cached copy. Its script
(``/static/pwa/drop.js``) ticks the countdown, reads the live state from the uncached drop API
and the shopper's own place from ``/api/v1/me/summary``.

The actions are plain forms (POST, then 303): join the waiting room, join the waitlist, buy once
admitted. They land on ``/drops/{id}/me``, a private page with the shopper's own place.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.catalog.models import Product, Variant
from dropline.clock import Clock
from dropline.drops import service, waiting_room
from dropline.drops.api import client_ip, early_access_of, purchase_response
from dropline.drops.models import Drop, DropWaitlistEntry
from dropline.drops.rules import DropState
from dropline.drops.schemas import PurchaseCreate
from dropline.drops.story import render_story
from dropline.errors import DomainError, InvalidInput, NotFound
from dropline.media.models import MediaOwner
from dropline.media.views import image_views
from dropline.orders.schemas import AddressIn, DeliveryIn
from dropline.payments.provider import CardToken
from dropline.popups import experiments
from dropline.popups.experiments import requested_variant
from dropline.popups.rules import cache_key
from dropline.schemas import IdForm
from dropline.security import token_digest
from dropline.web import caching
from dropline.web.deps import (
    OptionalCustomer,
    PaymentFormDep,
    Principal,
    Services,
    ServicesDep,
)
from dropline.web.payment_page import hosted_card_entry, ready_card, returned_form
from dropline.web.shop import delivery_windows
from dropline.web.templating import render_html, templates

router = APIRouter(include_in_schema=False)
Small = Annotated[int, Form(ge=1, le=99)]
Short = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True)
class DropItem:
    variant_id: int
    product_name: str
    product_slug: str
    variant_name: str
    price_amount: int
    currency: str
    condition_grade: str
    condition_disclosure: str
    note: str = ""  # the brand's line beside it (drops.stories)


def upcoming_drops(session: Session, *, clock: Clock, limit: int = 6
                   ) -> list[tuple[Drop, DropState]]:
    """Drops that have not ended, soonest first, with their state (for the home page)."""
    rows = session.scalars(select(Drop).where(Drop.ends_at > clock.now())
                           .order_by(Drop.starts_at, Drop.id).limit(limit))
    return [(drop, service.state_of(session, clock=clock, drop=drop)) for drop in rows]


def drop_items(session: Session, drop_id: int) -> list[DropItem]:
    notes = {v.variant_id: v.note for v in service.drop_variants(session, drop_id)}
    rows = session.execute(select(Variant, Product).join(Product, Product.id == Variant.product_id)
                           .where(Variant.id.in_(notes)).order_by(Variant.id))
    return [DropItem(v.id, p.name, p.slug, v.name, v.price_amount, v.currency,
                     v.condition_grade.value, v.condition_disclosure, notes[v.id])
            for v, p in rows]


def _next_change(drop: Drop, now: datetime) -> float:
    """Seconds until the drop's state changes by the clock alone (opening, start, end)."""
    moments = [drop.starts_at - timedelta(minutes=drop.early_access_minutes), drop.starts_at,
               drop.ends_at]
    ahead = [(m - now).total_seconds() for m in moments if m > now]
    return min(ahead) if ahead else caching.DROP.s_maxage


def render_drop(services: Services, ref: str,
                variant_key: str | None = None) -> tuple[str, list[str], int, float]:
    """(html, surrogate keys, status, seconds the render stays true). ``variant_key``: the A/B
    variant named by the URL or edge (``popups.experiments``), never by the visitor."""
    shop_name = services.settings.shop.name
    now = services.clock.now()
    with services.db.transaction() as session:
        try:
            drop = service.find_drop(session, ref)
        except NotFound:
            return (render_html("not_found.html", shop_name=shop_name, what="drop"),
                    ["drop-list", experiments.page_key("drop")], 404, caching.DROP.s_maxage)
        state = service.state_of(session, clock=services.clock, drop=drop)
        items = drop_items(session, drop.id)
        product_ids = set(session.scalars(select(Variant.product_id).where(
            Variant.id.in_([i.variant_id for i in items]))))
        variant = experiments.page_variant(session, page_kind="drop", slug=drop.slug,
                                           query_variant=variant_key, header_variant=None)
        media_url = services.settings.media.public_url
        hero = image_views(session, MediaOwner.drop, [drop.id], base_url=media_url)[drop.id]
        item_images = image_views(session, MediaOwner.variant, [i.variant_id for i in items],
                                  base_url=media_url)
    html = render_html(
        "drop.html", shop_name=shop_name, drop=drop, state=state.value, items=items,
        opens_at=drop.starts_at - timedelta(minutes=drop.early_access_minutes),
        rendered_at=now, experiment=variant, story_html=render_story(drop.story),
        hero=hero[0] if hero else None, gallery=hero[1:], item_images=item_images)
    keys = [f"drop-{drop.id}", *(f"product-{p}" for p in sorted(product_ids)),
            experiments.page_key("drop")]
    return html, keys, 200, _next_change(drop, now)


async def drop_page_response(request: Request, ref: str) -> Response:
    services = caching.services_of(request)
    variant = requested_variant(request.query_params.get("v"),
                                request.headers.get("x-dropline-variant"))
    response = await caching.serve_public(
        request, policy=caching.DROP, key=cache_key(f"/drops/{ref}", variant),
        render=lambda: render_drop(services, ref, variant))
    response.headers["Vary"] = "X-Dropline-Variant"
    return response


@router.get("/drops/{ref}")
async def drop_page(ref: str, request: Request) -> Response:
    return await drop_page_response(request, ref[:120])


@router.get("/drops/{ref}/waiting-room")
async def waiting_room_page(ref: str, request: Request) -> Response:
    """The waiting room is the drop page (kept for links shared before the storefront)."""
    return await drop_page_response(request, ref[:120])


# --- the shopper's own place (private) --------------------------------------------------------


def _sign_in(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={next_path}", status_code=303)


def _me_page(request: Request, services: Services, customer: Principal, drop_id: int, *,
             error: str = "", message: str = "", status_code: int = 200,
             form: dict[str, str] | None = None, field: str = "", postcode: str = "",
             confirm: dict[str, str] | None = None,
             card: CardToken | None = None) -> HTMLResponse:
    """The shopper's own place; after a refused purchase ``form`` keeps what they typed
    (never the card number or CVC), shown with the one message saying why. ``confirm``: a
    payment waiting for the shopper's bank (3-D Secure), for the provider's script to confirm
    (``_confirm_payment.html``). ``card``: a card back from the provider's hosted card page,
    shown ready in the form. ``field``: the form field the refusal is about (shown beside
    it, e.g. a discount code's refusal). ``postcode``: the hub delivery windows offered there
    are listed in the form (for the item picked, else the first)."""
    clock = services.clock
    with services.db.transaction() as session:
        drop = service.get_drop(session, drop_id)
        state = service.state_of(session, clock=clock, drop=drop)
        items = drop_items(session, drop.id)
        try:
            queue = waiting_room.queue_status(session, clock=clock, drop=drop,
                                              customer_id=customer.id,
                                              early_access=early_access_of(request))
        except NotFound:
            queue = None
        waitlist = session.scalar(select(DropWaitlistEntry).where(
            DropWaitlistEntry.drop_id == drop.id, DropWaitlistEntry.customer_id == customer.id))
        can_buy = state in (DropState.live, DropState.early_access) and (
            not drop.queue_enabled or (queue is not None and queue.admitted))
        form = form or {}
        postcode = postcode or form.get("postcode", "")
        if postcode and not form.get("postcode"):
            form = {**form, "postcode": postcode}  # the address starts with it
        picked = next((item.variant_id for item in items
                       if str(item.variant_id) == form.get("variant_id")),
                      items[0].variant_id if items else None)
        windows = delivery_windows(session, services, [(picked, 1)], postcode) \
            if can_buy and picked is not None else []
    response = templates.TemplateResponse(request, "drop_me.html", {
        "shop_name": services.settings.shop.name, "drop": drop, "state": state.value,
        "items": items, "queue": queue, "waitlist": waitlist, "can_buy": can_buy,
        "error": error, "field": field, "message": message, "form_key": uuid.uuid4().hex,
        "form": form, "confirm": confirm, "card_ready": card, "windows": windows,
        "postcode": postcode,
        "eta": int((queue.admitted_at - clock.now()).total_seconds()) if queue else 0,
    }, status_code=status_code)
    return caching.private_response(response)  # type: ignore[return-value]


def _drop_id(services: Services, ref: str) -> int:
    with services.db.transaction() as session:
        return service.find_drop(session, ref[:120]).id


@router.get("/drops/{ref}/me")
def my_place(ref: str, request: Request, services: ServicesDep,
             customer: OptionalCustomer) -> Response:
    if customer is None:
        return _sign_in(f"/drops/{ref[:120]}/me")
    message = {"queue": "You are in the waiting room.",
               "waitlist": "You are on the waitlist: we will offer you units that come back."}
    query = request.query_params
    # Back from the provider's hosted card page (no JavaScript): the card ready, and what the
    # shopper had typed, for them to confirm.
    card = ready_card(services, query.get("payment_method", ""))
    typed = returned_form(services, request) if card else None
    return _me_page(request, services, customer, _drop_id(services, ref),
                    message=message.get(query.get("done", ""), ""), form=typed, card=card,
                    postcode=query.get("postcode", "")[:16])


def _act(request: Request, services: Services, customer: Principal | None, ref: str,
         action: Any, done: str) -> Response:
    if customer is None:
        return _sign_in(f"/drops/{ref[:120]}")
    drop_id = _drop_id(services, ref)
    try:
        action(drop_id, customer)
    except DomainError as exc:
        return _me_page(request, services, customer, drop_id, error=exc.detail,
                        status_code=exc.status)
    for hook in services.after_commit:
        hook()
    return RedirectResponse(f"/drops/{drop_id}/me?done={done}", status_code=303)


@router.post("/drops/{ref}/queue")
def join_queue(ref: str, request: Request, services: ServicesDep,
               customer: OptionalCustomer) -> Response:
    def action(drop_id: int, who: Principal) -> None:
        with services.db.transaction() as session:
            waiting_room.join_queue(session, clock=services.clock,
                                    drop=service.get_drop(session, drop_id),
                                    customer_id=who.id, ip=client_ip(request))

    return _act(request, services, customer, ref, action, "queue")


@router.post("/drops/{ref}/waitlist")
def join_waitlist(ref: str, request: Request, services: ServicesDep,
                  customer: OptionalCustomer, variant_id: IdForm,
                  quantity: Small = 1) -> Response:
    def action(drop_id: int, who: Principal) -> None:
        with services.db.transaction() as session:
            service.join_waitlist(session, clock=services.clock,
                                  drop=service.get_drop(session, drop_id), customer_id=who.id,
                                  variant_id=variant_id, quantity=quantity)

    return _act(request, services, customer, ref, action, "waitlist")




def _purchase_body(form: dict[str, str], *, variant_id: int, quantity: int) -> PurchaseCreate:
    try:
        return PurchaseCreate(
            lines=[{"variant_id": variant_id, "quantity": quantity}],
            payment_method=form["payment_method"],
            shipping_address=AddressIn(name=form["name"], line1=form["line1"],
                                       city=form["city"], postcode=form["postcode"],
                                       country=form["country"] or "GB"),
            discount_code=form.get("discount_code", ""),
            delivery=DeliveryIn(window_id=int(form["window"]))
            if form.get("window", "").isdigit() else None)
    except (ValidationError, ValueError):
        raise InvalidInput("check the address") from None


@router.post("/drops/{ref}/buy")
def buy(ref: str, request: Request, services: ServicesDep, customer: OptionalCustomer,
        variant_id: IdForm, key: Annotated[str, Form(max_length=64)],
        name: Short, line1: Short, city: Short, postcode: Short, payment: PaymentFormDep,
        quantity: Small = 1, country: Short = "GB", discount_code: Short = "",
        window: Short = "") -> Response:
    """Buys once admitted: an admission token is issued and redeemed in this one request,
    through the API's entry point (``api.purchase_response``: rate limits, the engine or the
    database path). The form's key is the purchase's Idempotency-Key, so a double submit is
    the same purchase."""
    if customer is None:
        return _sign_in(f"/drops/{ref[:120]}")
    drop_id = _drop_id(services, ref)
    typed = {"name": name, "line1": line1, "city": city, "postcode": postcode,
             "country": country, "variant_id": str(variant_id), "quantity": str(quantity),
             "discount_code": discount_code, "window": window}
    if payment.missing:  # sent without JavaScript: the card is given at the provider's page
        hosted = hosted_card_entry(request, services, path=f"/drops/{drop_id}/me", form=typed,
                                   customer_id=customer.id)
        if hosted is not None:
            return hosted
    if payment.refusal is not None:
        return _me_page(request, services, customer, drop_id, error=payment.refusal,
                        status_code=422, form=typed)
    cookie = request.cookies.get(services.settings.web.session_cookie_name, "")[:200]
    try:
        body = _purchase_body({"payment_method": payment.reference, "name": name,
                               "line1": line1, "city": city, "postcode": postcode,
                               "country": country, "discount_code": discount_code,
                               "window": window},
                              variant_id=variant_id, quantity=quantity)
        token = None
        with services.db.transaction() as session:
            drop = service.get_drop(session, drop_id)
            if drop.queue_enabled:
                token = waiting_room.issue_admission(
                    session, clock=services.clock, secret=services.settings.web.secret_key,
                    drop=drop, customer_id=customer.id, session_digest=token_digest(cookie),
                    early_access=early_access_of(request)).token
        response = anyio.from_thread.run(partial(
            purchase_response, request, drop_id=drop_id, body=body, idempotency_key=key,
            admission_token=token))
    except DomainError as exc:
        return _me_page(request, services, customer, drop_id, error=exc.detail,
                        status_code=exc.status, form=typed,
                        field=str(exc.extensions.get("field") or ""))
    answer = json.loads(bytes(response.body))
    if response.status_code >= 400 and answer.get("client_secret") and answer.get("order_id"):
        # Held for the shopper while their bank asks them to authenticate, in this page.
        return _me_page(request, services, customer, drop_id, status_code=response.status_code,
                        confirm={"client_secret": str(answer["client_secret"]),
                                 "return_to": f"/orders/{int(answer['order_id'])}/payment-return",
                                 "bank_action":
                                     f"/orders/{int(answer['order_id'])}/bank-authentication"})
    if response.status_code >= 400:
        return _me_page(request, services, customer, drop_id, error=answer["detail"],
                        status_code=response.status_code, form=typed,
                        field=str(answer.get("field") or ""))
    return RedirectResponse(f"/orders/{answer['id']}?placed=1", status_code=303)
