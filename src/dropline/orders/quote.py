"""What the shopper will pay, before they pay it: the cart at this customer's prices (a
member's tier price) plus the chosen delivery (standard, or a hub window at its quoted price
after any member subsidy). The same questions, asked of the same policy, as the checkout flow
(``orders.flows``) asks when it writes the order, so the page's total is the amount charged
(tests hold the two equal). Reads only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dropline.carts.service import CartView
from dropline.clock import Clock
from dropline.config import Settings
from dropline.errors import DomainError
from dropline.orders.policy import CheckoutPolicy, DeliveryChoice
from dropline.pricing import shipping_for


@dataclass(frozen=True)
class CheckoutQuote:
    currency: str
    list_subtotal_amount: int  # at the listed prices
    subtotal_amount: int  # at this customer's prices
    shipping_amount: int
    window_id: int | None  # the hub window priced, or None for standard delivery
    problem: str = ""  # why the picked window could not be priced (standard is quoted instead)

    @property
    def total_amount(self) -> int:
        return self.subtotal_amount + self.shipping_amount

    @property
    def member_saving_amount(self) -> int:
        return self.list_subtotal_amount - self.subtotal_amount


def quote_checkout(session: Session, *, clock: Clock, settings: Settings,
                   policy: CheckoutPolicy, customer_id: int, view: CartView,
                   delivery: DeliveryChoice | None, postcode: str) -> CheckoutQuote:
    now = clock.now()
    priced = [(line.variant_id, line.quantity,
               policy.member_price(session, customer_id=customer_id, variant_id=line.variant_id,
                                   base_amount=line.unit_price_amount, at=now))
              for line in view.lines]
    subtotal = sum(price * quantity for _, quantity, price in priced)
    listed = sum(line.line_total_amount for line in view.lines)
    problem = ""
    if delivery is not None:
        try:
            quote = policy.quote_window(
                session, customer_id=customer_id,
                lines=[(variant_id, quantity) for variant_id, quantity, _ in priced],
                choice=delivery, postcode=postcode, at=now)
            return CheckoutQuote(view.cart.currency, listed, subtotal, quote.shipping_amount,
                                 quote.window_id)
        except DomainError as exc:
            problem = exc.detail
    shipping = shipping_for(subtotal, flat_amount=settings.shop.flat_shipping_amount,
                            free_threshold=settings.shop.free_shipping_threshold)
    return CheckoutQuote(view.cart.currency, listed, subtotal, shipping, None, problem)
