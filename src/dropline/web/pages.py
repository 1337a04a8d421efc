"""Server-rendered public storefront pages (Jinja2): home and product. Both are edge-cacheable
(see ``web.caching``): rendered with nothing about the visitor, tagged with the objects they
show. The signed-in pages (cart, checkout, orders, account) live in ``web.shop`` and
``web.account``; the PWA files in ``web.pwa``. Every page works without JavaScript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from dropline.catalog import service as catalog
from dropline.catalog.api import product_reads
from dropline.customers.api import ACQUISITION_COOKIE, acquisition_cookie_value
from dropline.drops.pages import upcoming_drops
from dropline.errors import NotFound
from dropline.media.models import MediaAsset, MediaOwner
from dropline.media.rules import largest_url
from dropline.media.service import images_of
from dropline.media.views import image_views
from dropline.popups import experiments
from dropline.popups.experiments import requested_variant
from dropline.popups.rules import cache_key
from dropline.web import caching
from dropline.web.account import router as account_router
from dropline.web.deps import Services
from dropline.web.pwa import router as pwa_router
from dropline.web.shop import router as shop_router
from dropline.web.templating import money, render_html, templates

__all__ = ["money", "render_home", "render_product", "router", "templates"]
router = APIRouter(include_in_schema=False)


def _remember_acquisition(request: Request, response: Response) -> Response:
    """First touch wins: the utm_source a visitor arrived with is kept for sign-up, if it is a
    source sign-up accepts (``customers.api.acquisition_cookie_value``). The cookie is
    ``Secure`` when the site is (``web.cookie_secure``). A response that sets it is personal,
    so it is marked private (the cached copy is not)."""
    if ACQUISITION_COOKIE in request.cookies:
        return response
    value = acquisition_cookie_value(request.query_params.get("utm_source", ""),
                                     request.query_params.get("utm_campaign", ""))
    if value is not None:
        response.set_cookie(ACQUISITION_COOKIE, value, max_age=90 * 86400, samesite="lax",
                            httponly=True,
                            secure=caching.services_of(request).settings.web.cookie_secure)
        caching.private_response(response)
    return response


def render_home(services: Services, family: str | None = None) -> tuple[str, list[str], int]:
    with services.db.transaction() as session:
        products = product_reads(session, catalog.list_products(session, family_slug=family))
        families = catalog.list_families(session)
        drops = upcoming_drops(session, clock=services.clock)
        media_url = services.settings.media.public_url
        tiles = image_views(session, MediaOwner.product, [p.id for p in products],
                            base_url=media_url)
        drop_images = image_views(session, MediaOwner.drop, [d.id for d, _ in drops],
                                  base_url=media_url)
    html = render_html("home.html", shop_name=services.settings.shop.name, products=products,
                       families=families, family=family, drops=drops,
                       tile_images={pid: views[0] for pid, views in tiles.items() if views},
                       drop_images={did: views[0] for did, views in drop_images.items()
                                    if views})
    keys = ["home", "product-list", "drop-list", *(f"product-{p.id}" for p in products),
            *(f"drop-{d.id}" for d, _ in drops)]
    return html, keys, 200


def service_images(session: Session, product_id: int) -> list[MediaAsset]:
    return images_of(session, MediaOwner.product, [product_id])[product_id]


def render_product(services: Services, slug: str,
                   variant_key: str | None = None) -> tuple[str, list[str], int]:
    """``variant_key``: the A/B variant asked for by URL (``?v=``) or edge header, never by
    who the visitor is, so each variant is one cacheable copy (``popups.experiments``)."""
    shop_name = services.settings.shop.name
    with services.db.transaction() as session:
        try:
            product = product_reads(session, [catalog.get_product_by_slug(session, slug)])[0]
        except NotFound:
            return (render_html("not_found.html", shop_name=shop_name, what="product"),
                    ["product-list", experiments.page_key("product")], 404)
        variant = experiments.page_variant(session, page_kind="product", slug=slug,
                                           query_variant=variant_key, header_variant=None)
        media_url = services.settings.media.public_url
        images = image_views(session, MediaOwner.product, [product.id],
                             base_url=media_url)[product.id]
        variant_images = image_views(session, MediaOwner.variant,
                                     [v.id for v in product.variants], base_url=media_url)
        assets = service_images(session, product.id)
    html = render_html("product.html", shop_name=shop_name, product=product,
                       experiment=variant, images=images, variant_images=variant_images,
                       image_urls=[largest_url(a, base_url=media_url) for a in assets])
    return html, [f"product-{product.id}", experiments.page_key("product")], 200


@router.get("/")
async def home(request: Request,
               family: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    services = caching.services_of(request)
    response = await caching.serve_public(request, policy=caching.CATALOGUE,
                                   render=lambda: render_home(services, family),
                                   key="/?family=" + family if family else "/")
    return _remember_acquisition(request, response)


@router.get("/products/{slug}")
async def product_page(request: Request, slug: str) -> Response:
    services = caching.services_of(request)
    variant = requested_variant(request.query_params.get("v"),
                                request.headers.get("x-dropline-variant"))
    response = await caching.serve_public(
        request, policy=caching.CATALOGUE,
        render=lambda: render_product(services, slug[:200], variant),
        key=cache_key(f"/products/{slug[:200]}", variant))
    response.headers["Vary"] = "X-Dropline-Variant"
    return _remember_acquisition(request, response)


router.include_router(shop_router)
router.include_router(account_router)
router.include_router(pwa_router)
