"""Server-rendered storefront pages (Jinja2). Every page works without JavaScript."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dropline.catalog import service as catalog
from dropline.catalog.api import product_reads
from dropline.catalog.rules import GRADE_LABELS
from dropline.catalog.models import ConditionGrade
from dropline.customers.api import ACQUISITION_COOKIE
from dropline.errors import NotFound
from dropline.web.deps import SessionDep, SettingsDep

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def money(amount: int, currency: str = "GBP") -> str:
    """Minor units to a display string: -150 GBP -> "-£1.50" (two-decimal currencies)."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    symbol = {"GBP": "£", "EUR": "€", "USD": "$"}.get(currency)
    major = f"{units:,}.{cents:02d}"
    return f"{sign}{symbol}{major}" if symbol else f"{sign}{major} {currency}"


templates.env.filters["money"] = money
templates.env.globals["grade_label"] = lambda g: GRADE_LABELS[ConditionGrade(g)]
router = APIRouter(include_in_schema=False)


def _remember_acquisition(request: Request, response: HTMLResponse) -> HTMLResponse:
    """First touch wins: the utm_source a visitor arrived with is kept for sign-up."""
    source = request.query_params.get("utm_source", "")[:64]
    if source and ACQUISITION_COOKIE not in request.cookies:
        campaign = request.query_params.get("utm_campaign", "")[:120]
        response.set_cookie(ACQUISITION_COOKIE, f"{source}|{campaign}", max_age=90 * 86400,
                            samesite="lax", httponly=True)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, settings: SettingsDep,
         family: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    products = product_reads(session, catalog.list_products(session, family_slug=family))
    families = catalog.list_families(session)
    response = templates.TemplateResponse(request, "home.html", {
        "shop_name": settings.shop_name, "products": products, "families": families,
        "family": family,
    })
    return _remember_acquisition(request, response)


@router.get("/products/{slug}", response_class=HTMLResponse)
def product_page(request: Request, slug: str, session: SessionDep,
                 settings: SettingsDep) -> HTMLResponse:
    try:
        product = product_reads(session, [catalog.get_product_by_slug(session, slug[:200])])[0]
    except NotFound:
        return templates.TemplateResponse(
            request, "not_found.html", {"shop_name": settings.shop_name, "what": "product"},
            status_code=404)
    response = templates.TemplateResponse(request, "product.html", {
        "shop_name": settings.shop_name, "product": product})
    return _remember_acquisition(request, response)
