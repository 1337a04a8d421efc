"""Demo step: tax classes for the catalogue, a few discount codes (one per kind, one capped
per customer, one instead of member prices, one expired) and a few paid orders that used them
(priced by the checkout's own ``quote_checkout``, with VAT), so the checkout page, the order
pages and the CLI show codes accepted, refused and used."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.carts.models import CartStatus
from dropline.carts.service import create_cart, set_line, view_cart
from dropline.catalog.models import Product, ProductFamily, Variant
from dropline.catalog.service import take_stock
from dropline.clock import FrozenClock
from dropline.customers.models import Customer
from dropline.demo import DemoContext, demo_step
from dropline.demo.shoppers import PAYMENT_PROVIDER
from dropline.discounts import service
from dropline.discounts.rules import DiscountKind, Stacking
from dropline.errors import InvalidState
from dropline.locations.models import Location, StockLevel
from dropline.orders import flows
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.policy import DiscountFacts, WindowQuote
from dropline.orders.quote import CheckoutQuote, quote_checkout
from dropline.orders.service import order_payload
from dropline.payments.models import Payment, PaymentStatus
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
    placed = _place_coded_orders(ctx)
    ctx.summary["discount codes"] = ", ".join(spec.code for spec in specs)
    return (f"{len(specs)} discount codes, {placed} orders using them; {classed} products at "
            "the reduced VAT rate")


class _ListPrices:
    """The demo's checkout policy for its coded orders: listed prices, standard delivery."""

    def member_price(self, session: Session, *, customer_id: int, variant_id: int,
                     base_amount: int, at: datetime) -> int:
        return base_amount

    def discount_facts(self, session: Session, *, customer_id: int,
                       variant_ids: Sequence[int], at: datetime) -> DiscountFacts:
        return DiscountFacts()

    def quote_window(self, *args: object, **kwargs: object) -> WindowQuote:
        raise InvalidState("the demo's coded orders use standard delivery")

    def book_window(self, *args: object, **kwargs: object) -> None:
        raise InvalidState("the demo's coded orders use standard delivery")

    def cancel_window(self, *args: object, **kwargs: object) -> None:
        return None


# (code, family of the item bought); each placed twice, by different customers.
CODED_ORDERS = [("WELCOME10", "eau-de-parfum"), ("CANDLES5", "candles"),
                ("FREESHIP", "refills")]


def _place_coded_orders(ctx: DemoContext) -> int:
    """A few paid orders that used a code, priced by the checkout's own ``quote_checkout``
    (member prices, the code, delivery, VAT) with the code's use taken by ``take_use``; written
    as the order history is (rows, then events queued at their historical times, so the event
    log reads in time order)."""
    session = ctx.session
    location = ctx.settings.shop.default_location_code
    location_id = session.scalar(select(Location.id).where(Location.code == location))
    customers = list(ctx.ids.customers)[:2 * len(CODED_ORDERS)]
    placed = 0
    for n, customer_id in enumerate(customers):
        code, family = CODED_ORDERS[n // 2]
        variant_id = session.scalar(
            select(Variant.id).join(Product, Product.id == Variant.product_id)
            .join(ProductFamily, ProductFamily.id == Product.family_id)
            .join(StockLevel, StockLevel.variant_id == Variant.id)
            .where(ProductFamily.slug == family, StockLevel.location_id == location_id,
                   StockLevel.on_hand > 0, Variant.active.is_(True))
            .order_by(Variant.id))
        if variant_id is None or location_id is None:
            continue
        # Placed over the last days (history lies before the demo's now), paid a minute on.
        clock = FrozenClock(ctx.now - timedelta(hours=7 * (len(customers) - n)))
        created_at, paid_at = clock.now(), clock.now() + timedelta(minutes=1)
        cart = create_cart(session, clock=clock, currency=ctx.settings.shop.currency,
                           customer_id=customer_id)
        set_line(session, clock=clock, cart=cart, variant_id=variant_id, quantity=1)
        view = view_cart(session, cart=cart, flat_shipping=0, free_shipping_threshold=0)
        shopper = ctx.ids.customers[customer_id]
        quote = quote_checkout(session, clock=clock, settings=ctx.settings,
                               policy=_ListPrices(), customer_id=customer_id, view=view,
                               delivery=None, postcode="", discount_code=code, strict=True,
                               country=shopper.address.get("country", ""))
        assert quote.discount_id is not None and quote.tax is not None
        service.take_use(session, discount_id=quote.discount_id, customer_id=customer_id)
        if not take_stock(session, location_id=location_id, variant_id=variant_id,
                          quantity=1):
            continue
        order = _write_paid_order(ctx, quote=quote, customer_id=customer_id, cart_id=cart.id,
                                  location_id=location_id, created_at=created_at,
                                  paid_at=paid_at, payment_key=f"demo_pay_code_{n}")
        cart.status = CartStatus.checked_out
        service.record_redemption(
            session, clock=clock, discount_id=quote.discount_id, customer_id=customer_id,
            order_id=order.id, discount_amount=quote.discount_amount,
            delivery_discount_amount=quote.delivery_discount_amount)
        payload = order_payload(session, order)
        ctx.record_later(at=created_at, type="order.created", subject_type="order",
                         subject_id=order.id, customer_id=customer_id,
                         payload={**payload, "discount_code": code,
                                  "discount_amount": quote.discount_amount})
        ctx.record_later(at=paid_at, type="order.paid", subject_type="order",
                         subject_id=order.id, customer_id=customer_id,
                         payload={**payload, "decline_code": None})
        placed += 1
    return placed


def _write_paid_order(ctx: DemoContext, *, quote: CheckoutQuote, customer_id: int,
                      cart_id: str, location_id: int, created_at: datetime,
                      paid_at: datetime, payment_key: str) -> Order:
    session = ctx.session
    shopper = ctx.ids.customers[customer_id]
    customer = session.get(Customer, customer_id)
    assert customer is not None and quote.tax is not None
    vat = quote.tax
    order = Order(
        customer_id=customer_id, email=customer.email, status=OrderStatus.paid,
        currency=quote.currency, subtotal_amount=quote.subtotal_amount,
        discount_amount=quote.discount_amount, shipping_amount=quote.shipping_amount,
        tax_added_amount=vat.added_amount, total_amount=quote.total_amount, refunded_amount=0,
        discount_code=quote.discount_code, tax_amount=vat.tax_amount,
        shipping_tax_amount=vat.shipping.tax_amount, shipping_tax_rate_bp=vat.shipping.rate_bp,
        tax_country=vat.country, cart_id=cart_id, location_id=location_id,
        fulfilment_path="central", acquisition_source=customer.acquisition_source,
        acquisition_campaign=customer.acquisition_campaign,
        shipping_address=shopper.address, created_at=created_at, paid_at=paid_at)
    session.add(order)
    session.flush()
    drafted = {line.variant.id: line for line in flows.draft_lines(
        session, [(line.variant_id, line.unit_price_amount, line.quantity)
                  for line in quote.lines])}
    for line, tax_line in zip(quote.lines, vat.lines, strict=True):
        draft = drafted[line.variant_id]
        session.add(OrderLine(
            order_id=order.id, variant_id=line.variant_id, sku=draft.variant.sku,
            product_name=draft.product.name, variant_name=draft.variant.name,
            product_family=draft.family.slug, condition_grade=draft.variant.condition_grade,
            condition_disclosure=draft.variant.condition_disclosure,
            unit_price_amount=line.unit_price_amount, quantity=line.quantity,
            line_total_amount=line.line_total_amount, discount_amount=line.discount_amount,
            tax_class=tax_line.tax_class.value, tax_rate_bp=tax_line.rate_bp,
            tax_amount=tax_line.tax_amount))
    session.add(Payment(
        order_id=order.id, provider=PAYMENT_PROVIDER, idempotency_key=payment_key,
        provider_ref=f"demo_ch_{payment_key}", status=PaymentStatus.succeeded,
        amount=order.total_amount, currency=order.currency, card_last4=shopper.card_last4,
        card_fingerprint=shopper.card_fingerprint, created_at=created_at, updated_at=paid_at))
    session.flush()
    return order
