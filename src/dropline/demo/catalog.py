"""Built-in steps: the catalog (through the catalog service), the locations and their stock."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from dropline.catalog.service import VariantSpec, create_product, ensure_family, variants_of
from dropline.clock import FrozenClock
from dropline.demo.brand import CENTRAL, CURRENCY, FAMILIES, LAUNCH_DAYS_AGO, LOCATIONS, PRODUCTS
from dropline.demo.steps import DemoContext, demo_step
from dropline.locations.models import Location, StockLevel


def location_code(ctx: DemoContext, brand_code: str) -> str:
    """The stored code: the central warehouse takes the shop's default location code, because
    live checkout takes stock from that location."""
    return ctx.settings.shop.default_location_code if brand_code == CENTRAL else brand_code


@demo_step("catalog", order=100, label="Catalog")
def seed_catalog(ctx: DemoContext) -> str:
    launch = FrozenClock(ctx.now - timedelta(days=LAUNCH_DAYS_AGO))
    for family in FAMILIES:
        ctx.ids.families[family.slug] = ensure_family(ctx.session, slug=family.slug,
                                                      name=family.name).id
    for item in PRODUCTS:
        product = create_product(
            ctx.session, clock=launch, name=item.name, slug=item.slug, family_slug=item.family,
            description=item.description,
            variants=[VariantSpec(sku=v.sku, name=v.name, price_amount=v.price, currency=CURRENCY,
                                  condition_grade=v.grade, condition_disclosure=v.disclosure,
                                  weight_grams=v.weight_grams, final_sale=v.final_sale)
                      for v in item.variants],
        )
        ctx.ids.products[item.slug] = product.id
    for variants in variants_of(ctx.session, list(ctx.ids.products.values())).values():
        ctx.ids.variants.update({v.sku: v.id for v in variants})
    return f"{len(ctx.ids.products)} products, {len(ctx.ids.variants)} variants"


@demo_step("locations", order=200, label="Locations and stock")
def seed_locations(ctx: DemoContext) -> str:
    for spot in LOCATIONS:
        location = Location(code=location_code(ctx, spot.code), name=spot.name, kind=spot.kind,
                            address=spot.address, latitude=spot.latitude,
                            longitude=spot.longitude, active=True)
        ctx.session.add(location)
        ctx.session.flush()
        ctx.ids.locations[spot.code] = location.id
    # The opening stock position, written in one statement. (set_stock is for stock takes: it
    # would add a "stock.counted" event per row, which no real shop records for opening stock.)
    rows = [
        {"location_id": ctx.ids.locations[code], "variant_id": ctx.ids.variants[variant.sku],
         "on_hand": units}
        for product in PRODUCTS for variant in product.variants
        for code, units in variant.stock.items()
    ]
    ctx.session.execute(insert(StockLevel), rows)
    return f"{len(LOCATIONS)} locations, {sum(r['on_hand'] for r in rows):,} units on hand"
