"""The cart checkout asks its policy (``orders.policy.CheckoutPolicy``) what a member pays and
what a delivery window costs, and books or frees the window through it: orders knows nothing
else of memberships or fulfilment. A hand-written policy stands in for the shop's."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dropline.adapters.payments import LocalCardProvider
from dropline.errors import PaymentDeclined
from dropline.locations.models import StockLevel
from dropline.orders import flows
from dropline.orders.models import Order, OrderLine
from dropline.orders.policy import DeliveryChoice, WindowQuote
from dropline.payments.provider import CardToken
from tests.builders import ADDRESS, DECLINED_PM, card_of, make_location, make_product
from tests.orders.test_races import CARD, _shopper_with_cart


class HalfPricePolicy:
    """Members pay half; any picked window costs 150 from ``location_id``."""

    def __init__(self, location_id: int) -> None:
        self.location_id = location_id
        self.booked: list[tuple[int, int, object]] = []
        self.cancelled: list[int] = []

    def member_price(self, session, *, customer_id, variant_id, base_amount, at) -> int:
        return base_amount // 2

    def quote_window(self, session, *, customer_id, lines, choice, postcode, at) -> WindowQuote:
        return WindowQuote(window_id=choice.window_id, location_id=self.location_id,
                           shipping_amount=150, subsidised=True, booking="the van's booking")

    def book_window(self, session, *, clock, quote, order_id, customer_id) -> None:
        self.booked.append((quote.window_id, order_id, quote.booking))

    def cancel_window(self, session, *, clock, order_id) -> None:
        self.cancelled.append(order_id)


def _checkout(db, clock, settings, policy, customer_id, cart_id, *, card: CardToken = CARD,
              delivery: DeliveryChoice | None = None) -> int:
    return flows.checkout(
        db, clock=clock, settings=settings, provider=LocalCardProvider(db.sessions, clock),
        policy=policy, request=flows.CheckoutRequest(customer_id, cart_id, card, ADDRESS,
                                                     "policy-1", delivery))


def test_the_order_is_priced_at_the_member_price_the_policy_names(db, clock, settings):
    location_id = make_location(db)
    _, variant = make_product(db, clock, price=4000, stock=3)
    customer_id, cart_id = _shopper_with_cart(db, clock, settings, variant, 0, qty=2)

    order_id = _checkout(db, clock, settings, HalfPricePolicy(location_id), customer_id,
                         cart_id)

    with db.transaction() as session:
        order = session.get(Order, order_id)
        line = session.scalar(select(OrderLine).where(OrderLine.order_id == order_id))
        assert (line.unit_price_amount, line.quantity) == (2000, 2)
        # 4000 is below the free-shipping threshold (5000): central flat shipping applies.
        assert (order.subtotal_amount, order.shipping_amount, order.total_amount) == (
            4000, 395, 4395)
        assert order.fulfilment_path == "central"


def test_a_picked_window_is_quoted_and_booked_by_the_policy(db, clock, settings):
    location_id = make_location(db)
    _, variant = make_product(db, clock, price=4000, stock=3)
    customer_id, cart_id = _shopper_with_cart(db, clock, settings, variant, 0)
    policy = HalfPricePolicy(location_id)

    order_id = _checkout(db, clock, settings, policy, customer_id, cart_id,
                         delivery=DeliveryChoice(window_id=7))

    with db.transaction() as session:
        order = session.get(Order, order_id)
        assert (order.fulfilment_path, order.shipping_amount, order.total_amount) == (
            "hub-window", 150, 2150)
    assert policy.booked == [(7, order_id, "the van's booking")]
    assert policy.cancelled == []


def test_a_declined_card_frees_the_window_through_the_policy_and_returns_the_units(
        db, clock, settings):
    location_id = make_location(db)
    _, variant = make_product(db, clock, price=4000, stock=3)
    customer_id, cart_id = _shopper_with_cart(db, clock, settings, variant, 0)
    policy = HalfPricePolicy(location_id)

    with pytest.raises(PaymentDeclined) as declined:
        _checkout(db, clock, settings, policy, customer_id, cart_id,
                  card=card_of(DECLINED_PM), delivery=DeliveryChoice(window_id=7))

    order_id = declined.value.extensions["order_id"]
    assert policy.cancelled == [order_id]
    with db.transaction() as session:
        assert session.scalar(select(StockLevel.on_hand)) == 3
