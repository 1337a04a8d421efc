"""Demo step: tax classes for the catalogue and a few discount codes (one per kind, one capped
per customer, one for members only, one expired), so the checkout page and the CLI show codes
accepted and refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dropline.catalog.models import Product, ProductFamily
from dropline.demo import DemoContext, demo_step
from dropline.discounts import service
from dropline.discounts.rules import DiscountKind, Stacking
from dropline.tax import service as tax
from dropline.tax.rules import TaxClass

# Refills are sold as a reduced-rate example (a shop sets its real classes with its adviser).
CLASSES = {"refills": TaxClass.reduced}


@demo_step("discounts-and-tax", order=955, label="Tax classes and discount codes")
def seed_discounts_and_tax(ctx: DemoContext) -> str:
    session, now = ctx.session, ctx.now
    classed = 0
    for product_id, family in session.execute(
            select(Product.id, ProductFamily.slug)
            .join(ProductFamily, ProductFamily.id == Product.family_id)):
        tax_class = CLASSES.get(family, TaxClass.standard)
        tax.set_tax_class(session, product_id=product_id, tax_class=tax_class)
        classed += tax_class is not TaxClass.standard
    currency = ctx.settings.shop.currency
    specs = [
        service.CodeSpec(code="WELCOME10", kind=DiscountKind.percentage, percent=10,
                         currency=currency, max_uses_per_customer=1,
                         description="10 % off a first order, once per customer"),
        service.CodeSpec(code="CANDLES5", kind=DiscountKind.fixed, amount=500,
                         currency=currency, family_slugs=["candles"], max_uses=200,
                         ends_at=now + timedelta(days=30), description="£5 off candles"),
        service.CodeSpec(code="MEMBERSHIP", kind=DiscountKind.percentage, percent=15,
                         currency=currency, stacking=Stacking.instead_of_member_price,
                         description="15 % instead of member prices"),
        service.CodeSpec(code="FREESHIP", kind=DiscountKind.free_delivery, currency=currency,
                         max_uses=500, description="free delivery"),
        service.CodeSpec(code="SUMMER", kind=DiscountKind.percentage, percent=20,
                         currency=currency, starts_at=now - timedelta(days=200),
                         ends_at=now - timedelta(days=100), description="expired"),
    ]
    for spec in specs:
        service.create_code(session, clock=ctx.clock, spec=spec)
    ctx.summary["discount codes"] = ", ".join(spec.code for spec in specs)
    return f"{len(specs)} discount codes; {classed} products at the reduced VAT rate"
