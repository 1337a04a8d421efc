"""Carts: build a basket, by guest or customer, before checkout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dropline.carts.models import Cart, CartLine, CartStatus
from dropline.catalog.models import Product, ProductStatus, Variant
from dropline.catalog.service import available_stock, get_variant
from dropline.clock import Clock
from dropline.errors import InvalidInput, InvalidState, NotFound, OutOfStock
from dropline.pricing import PricedLine, Totals, order_totals

MAX_LINE_QUANTITY = 99


@dataclass(frozen=True)
class CartLineView:
    variant_id: int
    sku: str
    product_name: str
    product_slug: str
    variant_name: str
    condition_grade: str
    condition_disclosure: str
    unit_price_amount: int
    quantity: int
    currency: str

    @property
    def line_total_amount(self) -> int:
        return self.unit_price_amount * self.quantity


@dataclass(frozen=True)
class CartView:
    cart: Cart
    lines: list[CartLineView]
    totals: Totals | None


def create_cart(session: Session, *, clock: Clock, currency: str,
                customer_id: int | None = None) -> Cart:
    now = clock.now()
    cart = Cart(id=str(uuid.uuid4()), customer_id=customer_id, currency=currency,
                status=CartStatus.open, created_at=now, updated_at=now)
    session.add(cart)
    session.flush()
    return cart


def load_cart(session: Session, *, cart_id: str, customer_id: int | None) -> Cart:
    """A customer's cart is visible only to that customer (others get 404, not 403, so cart
    ids cannot be probed); a guest cart is claimed by the first customer who uses it."""
    cart = session.get(Cart, cart_id)
    if cart is None or (cart.customer_id is not None and cart.customer_id != customer_id):
        raise NotFound(f"cart {cart_id} not found")
    if cart.customer_id is None and customer_id is not None:
        cart.customer_id = customer_id
    return cart


def _require_open(cart: Cart) -> None:
    if cart.status is not CartStatus.open:
        raise InvalidState("this cart has been checked out; start a new cart")


def set_line(session: Session, *, clock: Clock, cart: Cart, variant_id: int,
             quantity: int) -> None:
    """Sets the quantity of a variant in the cart (0 removes it)."""
    _require_open(cart)
    if not 0 <= quantity <= MAX_LINE_QUANTITY:
        raise InvalidInput(f"quantity must be between 0 and {MAX_LINE_QUANTITY}", field="quantity")
    line = session.scalar(select(CartLine).where(CartLine.cart_id == cart.id,
                                                 CartLine.variant_id == variant_id))
    if quantity == 0:
        if line is None:  # nothing to remove: a no-op, but an unknown variant is still a 404
            get_variant(session, variant_id)
            return
        session.delete(line)
    else:
        variant = get_variant(session, variant_id)
        product = session.get(Product, variant.product_id)
        if not variant.active or product is None or product.status is not ProductStatus.active:
            raise NotFound(f"variant {variant_id} is not for sale")
        if variant.currency != cart.currency:
            raise InvalidInput(f"variant is priced in {variant.currency}, cart is {cart.currency}")
        if available_stock(session, [variant_id])[variant_id] < quantity:
            raise OutOfStock(f"only {available_stock(session, [variant_id])[variant_id]} of "
                             f"{variant.sku} left", sku=variant.sku)
        if line is None:
            session.add(CartLine(cart_id=cart.id, variant_id=variant_id, quantity=quantity))
        else:
            line.quantity = quantity
    cart.updated_at = clock.now()
    session.flush()


def clear_cart(session: Session, *, cart: Cart) -> None:
    session.execute(delete(CartLine).where(CartLine.cart_id == cart.id))


def view_cart(session: Session, *, cart: Cart, flat_shipping: int,
              free_shipping_threshold: int) -> CartView:
    rows = session.execute(
        select(CartLine, Variant, Product)
        .join(Variant, Variant.id == CartLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(CartLine.cart_id == cart.id)
        .order_by(CartLine.variant_id)
    )
    lines = [
        CartLineView(
            variant_id=variant.id, sku=variant.sku, product_name=product.name,
            product_slug=product.slug, variant_name=variant.name,
            condition_grade=variant.condition_grade.value,
            condition_disclosure=variant.condition_disclosure,
            unit_price_amount=variant.price_amount, quantity=line.quantity,
            currency=variant.currency,
        )
        for line, variant, product in rows
    ]
    totals = None
    if lines:
        totals = order_totals(
            [PricedLine(l.variant_id, l.unit_price_amount, l.quantity, l.currency) for l in lines],
            currency=cart.currency, flat_shipping=flat_shipping,
            free_shipping_threshold=free_shipping_threshold,
        )
    return CartView(cart=cart, lines=lines, totals=totals)
