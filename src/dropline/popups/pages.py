"""Server-rendered pages of the pop-up domain.

* ``/counter/{code}`` -> ``/admin/counter/{code}``: the staff counter (behind the console
  sign-in; the console cookie is scoped to ``/admin``, so the counter lives there). Its JSON
  writes (a sale, a sign-up, a sign-up link) are under the same prefix, authenticated by that
  cookie and answering 401 problem+json (never a login redirect a script could mistake for
  success).
* ``/admin/popups``: pop-ups with sales, conversion to membership (with its interval), close
  reconciliations, value by acquisition source, and the experiments with their results.
* ``/stores``: hubs and pop-ups with LocalBusiness (Store) JSON-LD; ``/search``: on-device
  search over the downloaded index. Both public and cacheable (nothing about the visitor).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select

from dropline.audit import set_actor
from dropline.catalog.models import Product, ProductFamily, Variant
from dropline.errors import DomainError, NotAuthenticated, NotFound
from dropline.locations.models import Location, LocationKind
from dropline.errors import NotAuthenticated, NotFound, PermissionDenied
from dropline.memberships import service as members
from dropline.memberships.config import membership_config
from dropline.popups import counter, experiments, listings, service
from dropline.popups.api import sale_read, sell_idempotent
from dropline.popups.discovery import tags_for
from dropline.popups.models import Popup
from dropline.popups.schemas import CounterSaleCreate, CounterSignUp, SaleRead
from dropline.schemas import IdPath
from dropline.telemetry import service as telemetry
from dropline.telemetry.charts import bar_chart_svg
from dropline.telemetry.cohorts import value_by
from dropline.web.admin import (
    ADMIN_COOKIE,
    AdminPageUser,
    AdminViewer,
    render,
    signed_in_admin,
    staff_with,
    viewer_of,
)
from dropline.web.caching import etag_matches, strong_etag
from dropline.web.deps import Principal, ServicesDep, SessionDep
from dropline.web.forms import FormError, done, from_domain, parse_local_time
from dropline.web.navigation import NavItem
from dropline.web.templating import SHOP_TIMEZONE, jsonld_script, templates

PATH = "/admin/popups"
NAV_ITEMS = (NavItem("Pop-ups", PATH, "popups:read"),)
router = APIRouter(include_in_schema=False)
PUBLIC_CACHE = "public, max-age=300, s-maxage=600, stale-while-revalidate=3600"


# ------------------------------------------------------------------ staff counter


class StaffPrincipal(Principal):
    """A console user ringing up sales: Idempotency-Keys are scoped to them."""

    @property
    def key(self) -> str:
        return f"admin:{self.id}"


def staff_api(request: Request, services: ServicesDep) -> StaffPrincipal:
    token = request.cookies.get(ADMIN_COOKIE, "")[:200]
    if token:
        with services.db.transaction() as session:
            user = signed_in_admin(session, services, token)
            if user is not None:
                if not viewer_of(user).may(COUNTER_SCOPE):
                    raise PermissionDenied(f"your role does not allow this ({COUNTER_SCOPE})",
                                           scope=COUNTER_SCOPE)
                set_actor(f"admin:{user.id}")
                return StaffPrincipal(kind="token", id=user.id, email=user.email)
    raise NotAuthenticated("sign in to the console first (/admin/login)")


COUNTER_SCOPE = "popups:sell"
staff_api.console_scope = COUNTER_SCOPE  # type: ignore[attr-defined]  # read by the role tests


StaffDep = Annotated[StaffPrincipal, Depends(staff_api)]


@router.get("/counter/{code}")
def counter_redirect(code: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/counter/{code[:32]}", status_code=307)


def counter_data(session: Any, *, code: str) -> dict[str, Any]:
    """What the counter page searches locally: the variants stocked at this pop-up."""
    view = service.get_popup(session, code)
    stock = service.stock_at(session, view.location.id)
    rows = session.execute(
        select(Variant, Product, ProductFamily.slug)
        .join(Product, Product.id == Variant.product_id)
        .join(ProductFamily, ProductFamily.id == Product.family_id)
        .where(Variant.id.in_(stock), Variant.active.is_(True)).order_by(Product.name,
                                                                          Variant.id)).all()
    return {
        "popup": code, "name": view.location.name, "status": view.popup.status.value,
        "terminal": f"term_{code}"[:64],
        "variants": [{"id": v.id, "sku": v.sku, "name": f"{p.name} · {v.name}",
                      "family": fam, "tags": tags_for(p.name, "", fam),
                      "price": v.price_amount, "currency": v.currency, "stock": stock[v.id]}
                     for v, p, fam in rows],
        "tiers": [{"slug": t.slug, "name": t.name, "price": t.price_amount,
                   "currency": t.currency, "interval": t.interval.value}
                  for t in members.list_tiers(session)],
    }


@router.get("/admin/counter/{code}", response_class=HTMLResponse)
def counter_page(code: str, request: Request,
                 viewer: Annotated[AdminViewer, staff_with("popups:sell")],
                 session: SessionDep) -> HTMLResponse:
    data = counter_data(session, code=code[:32])
    return render(request, "popups/counter.html", viewer, data=data,
                  data_json=json.dumps(data).replace("<", "\\u003c"))


@router.post("/admin/counter/{code}/sales", response_model=SaleRead, status_code=201)
def counter_sale(code: str, body: CounterSaleCreate, request: Request, services: ServicesDep,
                 staff: StaffDep,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                               max_length=255)] = None
                 ) -> JSONResponse:
    return sell_idempotent(services, request=request, principal=staff, code=code[:32],
                           key=idempotency_key, body=body)


@router.post("/admin/counter/{code}/sales/{order_id}/membership")
def counter_sign_up(code: str, order_id: IdPath, body: CounterSignUp, services: ServicesDep,
                    staff: StaffDep) -> dict[str, Any]:
    with services.db.transaction() as session:
        if counter.sale_summary(session, order_id=min(order_id, 2**53)).popup_code != code:
            raise NotFound(f"counter sale {order_id} not found at {code[:32]}")
    membership_id = counter.sign_up_at_counter(
        services.db, clock=services.clock, config=membership_config(services.settings),
        provider=services.payments,  # type: ignore[arg-type]
        order_id=min(order_id, 2**53), tier_slug=body.tier)
    with services.db.transaction() as session:
        membership = members.get_membership(session, membership_id)
        return {"membership_id": membership_id, "status": membership.status.value,
                "tier": body.tier}


@router.post("/admin/counter/{code}/sales/{order_id}/signup-link")
def counter_signup_link(code: str, order_id: IdPath, request: Request, services: ServicesDep,
                        staff: StaffDep) -> SaleRead:
    with services.db.transaction() as session:
        summary = counter.sale_summary(session, order_id=min(order_id, 2**53))
    counter.send_after_commit(counter.signup_link_email(
        summary, shop_name=services.settings.shop.name, base_url=str(request.base_url)),
        services.mailer)
    return sale_read(summary)


# ------------------------------------------------------------------ console


def popups_context(session: Any, *, as_of: Any, currency: str,
                   within_days: int) -> dict[str, Any]:
    rows = service.conversion_report(session, within_days=within_days)
    chart = bar_chart_svg([(r.name, r.rate * 100) for r in rows],
                          title=f"Pop-up buyers who became members within {within_days} days",
                          fmt=lambda v: f"{v:.1f}%")
    closes = {r.code: service.close_report(session, code=r.code) for r in rows
              if r.status == "closed"}
    _, customers = telemetry.load_customers(session, as_of=as_of, currency=currency)
    by_source = value_by(customers, "source", days=90) if len(customers) else []
    return {"rows": rows, "chart_svg": Markup(chart), "closes": closes,
            "within_days": within_days, "by_source": by_source, "currency": currency,
            "experiments": [experiments.experiment_report(session, slug=e.slug)
                            for e in experiments.list_experiments(session)]}


@router.get(PATH, response_class=HTMLResponse)
def popups_page(request: Request,
                viewer: Annotated[AdminViewer, staff_with("popups:read")], session: SessionDep,
                services: ServicesDep,
                within_days: Annotated[int, Query(ge=1, le=365)] = service.CONVERSION_DAYS,
                done_: Annotated[str, Query(alias="done", max_length=200)] = ""
                ) -> HTMLResponse:
    context = popups_context(session, as_of=services.clock.now(),
                             currency=services.settings.shop.currency, within_days=within_days)
    return render(request, "popups/console.html", viewer, message=done_, **context)


# ------------------------------------------------------------------ public pages


def _public(request: Request, html: str, *, vary: str | None = None) -> Response:
    body = html.encode()
    etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": PUBLIC_CACHE}
    if vary:
        headers["Vary"] = vary
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type="text/html; charset=utf-8")


@router.get("/stores", response_class=HTMLResponse)
def stores_page(request: Request, session: SessionDep, services: ServicesDep) -> Response:
    """The stores with their structured data, whose links are absolute: built on the configured
    public address, else on the address the request named, and then the cached copy varies by
    Host so that no request can put another host's links in front of everyone."""
    stores = listings.list_stores(session)
    public_url = services.settings.web.public_url
    base = public_url or str(request.base_url).rstrip("/")
    blocks = [jsonld_script(listings.store_jsonld(s, base_url=base,
                                                  brand=services.settings.shop.name))
              for s in stores]
    html = templates.env.get_template("popups/stores.html").render(
        shop_name=services.settings.shop.name, stores=stores, jsonld=blocks)
    return _public(request, html, vary=None if public_url else "Host")


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, services: ServicesDep) -> Response:
    """The page never reads the query: search runs in the browser (discovery.js)."""
    html = templates.env.get_template("popups/search.html").render(
        shop_name=services.settings.shop.name)
    return _public(request, html)


# ------------------------------------------------------------------ console: plan and open

Manager = Annotated[AdminViewer, staff_with("popups:write")]
Text = Annotated[str, Form(max_length=200)]


def _plan_page(request: Request, viewer: AdminViewer, services: Any, *,
               values: dict[str, str], error: FormError | None = None) -> HTMLResponse:
    with services.db.transaction() as session:
        taken = set(session.scalars(select(Popup.location_id)))
        places = list(session.scalars(select(Location).order_by(Location.code)))
    spots = [("", "a new location (below)")] + [
        (loc.code, f"{loc.name} ({loc.code})") for loc in places
        if loc.kind is LocationKind.pop_up and loc.id not in taken]
    hubs = [(loc.code, f"{loc.name} ({loc.code})") for loc in places
            if loc.kind is not LocationKind.pop_up]
    return render(request, "popups/plan.html", viewer,
                  status_code=error.status if error else 200, values=values,
                  spot_options=spots, hub_options=hubs, **(error.context() if error else {}))


@router.get(PATH + "/new", response_class=HTMLResponse)
def plan_form(request: Request, viewer: Manager, services: ServicesDep) -> HTMLResponse:
    return _plan_page(request, viewer, services, values={})


@router.post(PATH + "/new", response_class=HTMLResponse)
def plan(request: Request, viewer: Manager, services: ServicesDep, location: Text = "",
         new_code: Text = "", new_name: Text = "", new_address: Text = "", hub: Text = "",
         opens_at: Text = "", closes_at: Text = "") -> Response:
    """Plans a pop-up (``service.plan_popup``, as ``dropline popups create`` does)."""
    values = {"location": location, "new_code": new_code, "new_name": new_name,
              "new_address": new_address, "hub": hub, "opens_at": opens_at,
              "closes_at": closes_at}
    try:
        code = location or new_code.strip()
        if not location and not (new_code.strip() and new_name.strip()):
            raise FormError("choose a pop-up location, or give the new one a code and a name",
                            field="new_code" if not new_code.strip() else "new_name")
        opens = parse_local_time(opens_at, "opens_at", timezone=SHOP_TIMEZONE)
        closes = parse_local_time(closes_at, "closes_at", timezone=SHOP_TIMEZONE)
        with services.db.transaction() as session:
            try:
                service.plan_popup(session, clock=services.clock, code=code[:32], hub_code=hub,
                                   opens_at=opens, closes_at=closes,
                                   name="" if location else new_name,
                                   address="" if location else new_address)
            except DomainError as exc:
                raise from_domain(exc, fields={"location": "location" if location
                                               else "new_code"}) from None
    except FormError as error:
        return _plan_page(request, viewer, services, values=values, error=error)
    return done(PATH, f"Pop-up {code} planned: transfer its stock, then open it.")


@router.post(PATH + "/{code}/open", response_class=HTMLResponse)
def open_now(code: str, viewer: Manager, services: ServicesDep) -> Response:
    try:
        with services.db.transaction() as session:
            service.open_popup(session, clock=services.clock, code=code[:32])
    except DomainError as exc:
        return done(PATH, f"Not opened: {exc.detail}")
    return done(PATH, f"{code[:32]} is open: its counter sells now.")
