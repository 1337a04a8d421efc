"""The checkout policy the composition root hands to the cart checkout: memberships' prices
and perks combined with fulfilment's delivery windows, behind ``orders.policy.CheckoutPolicy``.
Neither memberships nor fulfilment knows the other; this composite is where they meet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.drops.models import Drop, DropHold, DropVariant
from dropline.fulfilment.checkout import WindowCheckout
from dropline.fulfilment.ports import Geocoder
from dropline.fulfilment.service import CustomerFacts
from dropline.memberships.checkout import MemberCheckout
from dropline.orders.policy import CheckoutPolicy, DeliveryChoice, DiscountFacts, WindowQuote

__all__ = ["ShopCheckoutPolicy", "build_checkout_policy", "customer_delivery_facts",
           "orders_in_live_drops"]


class ShopCheckoutPolicy:
    """Member prices and subsidies from memberships, windows from fulfilment."""

    def __init__(self, *, members: MemberCheckout, windows: WindowCheckout) -> None:
        self._members = members
        self._windows = windows

    def member_price(self, session: Session, *, customer_id: int, variant_id: int,
                     base_amount: int, at: datetime) -> int:
        return self._members.member_price(session, customer_id=customer_id,
                                          variant_id=variant_id, base_amount=base_amount, at=at)

    def quote_window(self, session: Session, *, customer_id: int,
                     lines: Sequence[tuple[int, int]], choice: DeliveryChoice, postcode: str,
                     at: datetime) -> WindowQuote:
        perks = self._members.delivery_perks(session, customer_id=customer_id, at=at)
        return self._windows.quote_window(
            session, lines=lines, choice=choice, postcode=postcode, at=at,
            customer=CustomerFacts(is_member=perks.is_member,
                                   member_delivery_subsidy=perks.has_subsidy),
            subsidise=perks.subsidy.apply)

    def book_window(self, session: Session, *, clock: Clock, quote: WindowQuote,
                    order_id: int, customer_id: int) -> None:
        self._windows.book_window(session, clock=clock, quote=quote, order_id=order_id,
                                  customer_id=customer_id)

    def cancel_window(self, session: Session, *, clock: Clock, order_id: int) -> None:
        self._windows.cancel_window(session, clock=clock, order_id=order_id)


    def discount_facts(self, session: Session, *, customer_id: int,
                       variant_ids: Sequence[int], at: datetime) -> DiscountFacts:
        drops: dict[int, set[int]] = {}
        for variant_id, drop_id in session.execute(
                select(DropVariant.variant_id, DropVariant.drop_id)
                .where(DropVariant.variant_id.in_(list(variant_ids)))):
            drops.setdefault(variant_id, set()).add(drop_id)
        return DiscountFacts(
            tier_slug=self._members.tier_slug(session, customer_id=customer_id, at=at),
            drops={variant_id: frozenset(ids) for variant_id, ids in drops.items()})


def build_checkout_policy(*, geocoder: Geocoder, steering: bool = False) -> CheckoutPolicy:
    return ShopCheckoutPolicy(members=MemberCheckout(),
                              windows=WindowCheckout(geocoder, steering=steering))


def customer_delivery_facts(session: Session, customer_id: int, at: datetime) -> CustomerFacts:
    """What fulfilment's rules know of a shopper (member, delivery subsidy), for orders decided
    after the fact (``fulfilment.batch``): the same facts the checkout gives them."""
    perks = MemberCheckout().delivery_perks(session, customer_id=customer_id, at=at)
    return CustomerFacts(is_member=perks.is_member, member_delivery_subsidy=perks.has_subsidy)


def orders_in_live_drops(session: Session, at: datetime) -> set[int]:
    """Orders bought in a drop that has not ended: decided after the drop, in one batch."""
    return set(session.scalars(
        select(DropHold.order_id).join(Drop, Drop.id == DropHold.drop_id)
        .where(DropHold.order_id.is_not(None), Drop.ends_at > at)))
