"""Pure pricing arithmetic shared by carts, orders and every way of buying: priced lines and
an order's totals. Money is integer minor units; every order total is derived here and must
reconcile with its lines: total = sum(unit x qty) - discount + shipping (+ tax, when prices are
entered without it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dropline.errors import InvalidInput

__all__ = ["PricedLine", "Totals", "discounted_totals", "order_totals", "proportional_share",
           "reconciles", "shipping_for"]


@dataclass(frozen=True)
class PricedLine:
    variant_id: int
    unit_price_amount: int
    quantity: int
    currency: str

    @property
    def line_total_amount(self) -> int:
        return self.unit_price_amount * self.quantity


@dataclass(frozen=True)
class Totals:
    currency: str
    subtotal_amount: int
    discount_amount: int
    shipping_amount: int
    tax_added_amount: int = 0  # tax on top of prices entered without it (``tax.rules``)

    @property
    def total_amount(self) -> int:
        return (self.subtotal_amount - self.discount_amount + self.shipping_amount
                + self.tax_added_amount)


def shipping_for(subtotal_amount: int, *, flat_amount: int, free_threshold: int) -> int:
    return 0 if subtotal_amount >= free_threshold else flat_amount


def order_totals(
    lines: Sequence[PricedLine], *, currency: str, flat_shipping: int, free_shipping_threshold: int,
    discount_amount: int = 0,
) -> Totals:
    if not lines:
        raise InvalidInput("the cart is empty")
    foreign = {line.currency for line in lines} - {currency}
    if foreign:
        raise InvalidInput(f"cannot mix currencies in one order: {', '.join(sorted(foreign))} "
                           f"in a {currency} order")
    subtotal = sum(line.line_total_amount for line in lines)
    if not 0 <= discount_amount <= subtotal:
        raise InvalidInput("discount must be between zero and the subtotal")
    shipping = shipping_for(subtotal, flat_amount=flat_shipping,
                            free_threshold=free_shipping_threshold)
    return Totals(currency, subtotal, discount_amount, shipping)


def discounted_totals(lines: Sequence[PricedLine], *, currency: str, flat_shipping: int,
                      free_shipping_threshold: int, discount_amount: int,
                      free_delivery: bool = False,
                      delivery_amount: int | None = None) -> tuple[Totals, int]:
    """An order's totals after a discount code, as the checkout's quote prices them: delivery
    is free from the threshold judged on the goods after the discount (or costs
    ``delivery_amount``, a hub window's price, when one was picked), and a free-delivery code
    makes it nothing. Returns the totals and what the code saved on delivery."""
    plain = order_totals(lines, currency=currency, flat_shipping=flat_shipping,
                         free_shipping_threshold=free_shipping_threshold,
                         discount_amount=discount_amount)
    shipping = delivery_amount if delivery_amount is not None else shipping_for(
        plain.subtotal_amount - discount_amount, flat_amount=flat_shipping,
        free_threshold=free_shipping_threshold)
    saved = shipping if free_delivery else 0
    return Totals(currency, plain.subtotal_amount, discount_amount, shipping - saved), saved


def reconciles(*, subtotal_amount: int, discount_amount: int, shipping_amount: int,
               total_amount: int, line_totals: Sequence[tuple[int, int, int]]) -> bool:
    """line_totals: (unit_price_amount, quantity, line_total_amount) per line."""
    lines_ok = all(unit * qty == total for unit, qty, total in line_totals)
    subtotal_ok = sum(total for _, _, total in line_totals) == subtotal_amount
    return lines_ok and subtotal_ok and (
        total_amount == subtotal_amount - discount_amount + shipping_amount)


def proportional_share(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, in whole units that sum exactly to
    ``total`` (largest remainders get the leftover units; ties go to the earlier weight)."""
    whole = sum(weights)
    if whole <= 0:
        return [0 for _ in weights]
    shares = [total * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in remainders[:total - sum(shares)]:
        shares[i] += 1
    return shares
