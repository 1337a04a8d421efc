"""What the shopper will pay: the one place a cart is priced. The cart page, the checkout page,
``POST /api/v1/checkout/quote`` and the checkout flow itself (``orders.flows``, which writes
the order from the quote) all call ``quote_checkout``, so the total shown is the amount
charged.

In order: each line at this customer's price (a member's tier price, from the policy); a
discount code, if given (``discounts.rules``: which lines it covers, what it takes off each,
how it stacks with member prices); then delivery: a hub window at its quoted price after any
member subsidy, or standard delivery, free above the threshold (judged on the goods after the
discount); a free-delivery code makes either cost nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.carts.service import CartView
from dropline.catalog.models import Product, ProductFamily, Variant
from dropline.clock import Clock
from dropline.config import Settings
from dropline.discounts import service as discounts
from dropline.discounts.rules import LineFacts
from dropline.errors import DomainError
from dropline.orders.policy import CheckoutPolicy, DeliveryChoice, WindowQuote
from dropline.pricing import shipping_for
from dropline.tax import service as tax
from dropline.tax.ports import VatNumberChecker
from dropline.tax.rules import TaxBreakdown

__all__ = ["CheckoutQuote", "QuotedLine", "quote_checkout"]


@dataclass(frozen=True)
class QuotedLine:
    variant_id: int
    quantity: int
    list_unit_amount: int  # the listed price
    unit_price_amount: int  # what this customer pays per unit before any code
    discount_amount: int  # the code's part of this line (whole line, not per unit)

    @property
    def line_total_amount(self) -> int:
        return self.unit_price_amount * self.quantity


@dataclass(frozen=True)
class CheckoutQuote:
    currency: str
    lines: tuple[QuotedLine, ...]
    shipping_amount: int
    window_id: int | None  # the hub window priced, or None for standard delivery
    problem: str = ""  # why the picked window could not be priced (standard is quoted instead)
    window: WindowQuote | None = None
    discount_id: int | None = None
    discount_code: str | None = None
    delivery_discount_amount: int = 0  # what a free-delivery code saved
    tax: TaxBreakdown | None = None  # per line (in order) and delivery
    product_ids: tuple[int, ...] = ()

    @property
    def list_subtotal_amount(self) -> int:
        return sum(line.list_unit_amount * line.quantity for line in self.lines)

    @property
    def subtotal_amount(self) -> int:
        return sum(line.line_total_amount for line in self.lines)

    @property
    def discount_amount(self) -> int:
        return sum(line.discount_amount for line in self.lines)

    @property
    def tax_amount(self) -> int:
        return self.tax.tax_amount if self.tax else 0

    @property
    def tax_added_amount(self) -> int:
        return self.tax.added_amount if self.tax else 0

    @property
    def total_amount(self) -> int:
        return (self.subtotal_amount - self.discount_amount + self.shipping_amount
                + self.tax_added_amount)

    @property
    def member_saving_amount(self) -> int:
        return self.list_subtotal_amount - self.subtotal_amount


def _products(session: Session, variant_ids: list[int]) -> dict[int, tuple[int, str]]:
    """variant id -> (product id, family slug)."""
    return {variant_id: (product_id, family) for variant_id, product_id, family in
            session.execute(select(Variant.id, Product.id, ProductFamily.slug)
                            .join(Product, Product.id == Variant.product_id)
                            .join(ProductFamily, ProductFamily.id == Product.family_id)
                            .where(Variant.id.in_(variant_ids)))}


def _line_facts(session: Session, *, policy: CheckoutPolicy, customer_id: int,
                lines: list[tuple[int, int, int, int]], what: dict[int, tuple[int, str]],
                at: datetime) -> tuple[list[LineFacts], str | None]:
    """(variant, quantity, list unit, member unit) -> what a code's scope looks at."""
    ids = [variant_id for variant_id, _, _, _ in lines]
    facts = policy.discount_facts(session, customer_id=customer_id, variant_ids=ids, at=at)
    return [LineFacts(variant_id=v, product_id=what[v][0], family_slug=what[v][1],
                      drop_ids=facts.drops.get(v, frozenset()), quantity=q,
                      list_unit_amount=listed, member_unit_amount=member)
            for v, q, listed, member in lines], facts.tier_slug


def quote_checkout(session: Session, *, clock: Clock, settings: Settings,
                   policy: CheckoutPolicy, customer_id: int, view: CartView,
                   delivery: DeliveryChoice | None, postcode: str, discount_code: str = "",
                   strict: bool = False, country: str = "", vat_number: str = "",
                   vat_checker: VatNumberChecker = tax.OFFLINE) -> CheckoutQuote:
    """Prices the cart for this customer. A refused discount code raises its refusal
    (``discounts.errors``). A picked window that cannot take the order raises too when
    ``strict`` (the checkout: nothing is written), else standard delivery is quoted with the
    window's ``problem`` (a page showing the total). VAT is that of ``country`` (the delivery
    address's; the shop's by default); a ``vat_number`` must be valid, and from another
    country than the shop's it makes the sale reverse-charged."""
    now = clock.now()
    priced = [(line.variant_id, line.quantity, line.unit_price_amount,
               policy.member_price(session, customer_id=customer_id, variant_id=line.variant_id,
                                   base_amount=line.unit_price_amount, at=now))
              for line in view.lines]
    units = [member for _, _, _, member in priced]
    line_discounts = [0 for _ in priced]
    free_delivery = False
    code = None
    what = _products(session, [variant_id for variant_id, _, _, _ in priced])
    if discount_code.strip():
        facts, tier = _line_facts(session, policy=policy, customer_id=customer_id,
                                  lines=priced, what=what, at=now)
        code, applied = discounts.price_with_code(
            session, code=discount_code, lines=facts, currency=view.cart.currency,
            tier_slug=tier, customer_id=customer_id, at=now)
        units, line_discounts = list(applied.unit_amounts), list(applied.line_discounts)
        free_delivery = applied.free_delivery
    lines = tuple(QuotedLine(variant_id, quantity, listed, unit, discount)
                  for (variant_id, quantity, listed, _), unit, discount
                  in zip(priced, units, line_discounts, strict=True))
    goods = sum(line.line_total_amount - line.discount_amount for line in lines)
    window: WindowQuote | None = None
    problem = ""
    if delivery is not None:
        try:
            window = policy.quote_window(
                session, customer_id=customer_id,
                lines=[(line.variant_id, line.quantity) for line in lines],
                choice=delivery, postcode=postcode, at=now)
        except DomainError as exc:
            if strict:
                raise
            problem = exc.detail
    if window is not None:
        shipping = window.shipping_amount
    else:
        shipping = shipping_for(goods, flat_amount=settings.shop.flat_shipping_amount,
                                free_threshold=settings.shop.free_shipping_threshold)
    saved = shipping if free_delivery else 0
    product_ids = tuple(what[line.variant_id][0] for line in lines)
    vat = tax.tax_for(session, lines=[(pid, line.line_total_amount - line.discount_amount)
                                      for pid, line in zip(product_ids, lines, strict=True)],
                      shipping_amount=shipping - saved,
                      country=country or settings.shop.country, at=now,
                      prices_include_tax=settings.shop.prices_include_tax,
                      shop_country=settings.shop.country, vat_number=vat_number,
                      vat_checker=vat_checker)
    return CheckoutQuote(
        view.cart.currency, lines, shipping - saved, window.window_id if window else None,
        problem, window, discount_id=code.id if code else None,
        discount_code=code.code if code else None, delivery_discount_amount=saved, tax=vat,
        product_ids=product_ids)
