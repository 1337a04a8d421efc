"""The installable app: web app manifest, the service worker at the root scope, the offline
page, and the one uncached JSON call that personalises the (cached, identical) public pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from dropline.carts.service import view_cart
from dropline.catalog.service import variants_of
from dropline.customers.service import get_customer
from dropline.drops import service as drops
from dropline.drops import waiting_room
from dropline.drops.api import early_access_of
from dropline.drops.models import DropWaitlistEntry
from dropline.errors import NotFound
from dropline.memberships import perks
from dropline.money import format_money
from dropline.web import caching
from dropline.web.deps import OptionalCustomer, ServicesDep
from dropline.web.shop import current_cart
from dropline.web.templating import render_html

router = APIRouter()
STATIC = Path(__file__).parent / "static"


@router.get("/manifest.webmanifest", include_in_schema=False)
def manifest(services: ServicesDep) -> Response:
    body = {
        "name": services.settings.shop.name, "short_name": services.settings.shop.name[:12],
        "start_url": "/?source=pwa", "scope": "/", "display": "standalone",
        "background_color": services.settings.theme.paper,
        "theme_color": services.settings.theme.accent,
        "description": "Drops, members and offline-first checkout.",
        "icons": [{"src": f"/static/pwa/icon-{s}.png", "sizes": f"{s}x{s}",
                   "type": "image/png", "purpose": "any"} for s in (192, 512)],
    }
    return JSONResponse(body, media_type="application/manifest+json",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> Response:
    """Served from the root so its scope is the whole shop; ``no-cache`` so a new version is
    picked up on the next visit (the browser revalidates it on every navigation anyway)."""
    return FileResponse(STATIC / "pwa" / "sw.js", media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


@router.get("/offline", include_in_schema=False)
def offline(request: Request, services: ServicesDep) -> Response:
    return caching.public_page(request, policy=caching.CATALOGUE, key="/offline", render=lambda: (
        render_html("offline.html", shop_name=services.settings.shop.name), ["shell"], 200))


@router.get("/api/v1/me/summary", tags=["customers"],
            summary="What a cached page personalises: who, cart count, member, drop place")
def summary(request: Request, services: ServicesDep, customer: OptionalCustomer,
            drop: Annotated[int | None, Query(ge=1, le=2**62)] = None,
            product: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Response:
    """Never cached (``private, no-store``). ``drop`` adds the drop's live state and, when
    signed in, this shopper's early-access lead, queue place and waitlist entry. ``product``
    adds, for a member, the member price of each of its variants that is below the shelf
    price (``member_prices``: variant id -> amount, currency and the amount in words), by the
    same rule checkout charges."""
    clock = services.clock
    body: dict[str, Any] = {"signed_in": customer is not None, "name": "", "cart_count": 0,
                            "member": None, "drop": None, "member_prices": {}}
    with services.db.transaction() as session:
        cart = current_cart(session, request, customer)
        if cart is not None:
            view = view_cart(session, cart=cart, flat_shipping=0, free_shipping_threshold=0)
            body["cart_count"] = sum(line.quantity for line in view.lines)
        if customer is not None:
            person = get_customer(session, customer.id)
            body["name"] = person.name or person.email.split("@")[0]
            tier = perks.active_tier(session, customer_id=customer.id, at=clock.now())
            body["member"] = {"tier": tier.name} if tier is not None else None
            if tier is not None and product is not None:
                body["member_prices"] = _member_prices(session, services, customer.id, product)
        if drop is not None:
            body["drop"] = _drop_summary(session, request, services, drop, customer)
    return JSONResponse(body, headers={"Cache-Control": caching.PRIVATE})


def _member_prices(session: Any, services: ServicesDep, customer_id: int,
                   product_id: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for variant in variants_of(session, [product_id])[product_id]:
        amount = services.checkout.member_price(
            session, customer_id=customer_id, variant_id=variant.id,
            base_amount=variant.price_amount, at=services.clock.now())
        if amount < variant.price_amount:
            out[str(variant.id)] = {"amount": amount, "currency": variant.currency,
                                    "formatted": format_money(amount, variant.currency)}
    return out


def _drop_summary(session: Any, request: Request, services: ServicesDep, drop_id: int,
                  customer: Any) -> dict[str, Any] | None:
    clock = services.clock
    try:
        drop = drops.get_drop(session, drop_id)
    except NotFound:
        return None
    out: dict[str, Any] = {
        "id": drop.id, "state": drops.state_of(session, clock=clock, drop=drop).value,
        "remaining": sum(drops.remaining_by_pool(session, drop.id).values()),
        "early_access_minutes": 0, "queue": None, "waitlist": None}
    if customer is None:
        return out
    if drop.early_access_minutes:
        out["early_access_minutes"] = min(drop.early_access_minutes, early_access_of(request)(
            session, customer_id=customer.id, at=clock.now()))
    try:
        queue = waiting_room.queue_status(session, clock=clock, drop=drop,
                                          customer_id=customer.id,
                                          early_access=early_access_of(request))
        out["queue"] = {"position": queue.position, "admitted": queue.admitted,
                        "eta_seconds": max(0, int((queue.admitted_at - clock.now())
                                                  .total_seconds() + 0.999))}
    except NotFound:
        pass
    entry = session.scalar(select(DropWaitlistEntry).where(
        DropWaitlistEntry.drop_id == drop.id, DropWaitlistEntry.customer_id == customer.id))
    out["waitlist"] = entry.status.value if entry is not None else None
    return out
