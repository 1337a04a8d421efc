"""Builders for the lifecycle tests: a paid order, placed through the real checkout flow."""

from __future__ import annotations

import uuid

from dropline.adapters.payments import LocalCardProvider
from dropline.carts.service import create_cart, set_line
from dropline.clock import Clock
from dropline.config import Settings
from dropline.customers.service import register_customer
from dropline.db import Database
from dropline.orders import flows
from tests.builders import ADDRESS, card_of, checkout_policy

CARD = card_of()


def paid_order(db: Database, clock: Clock, settings: Settings,
               lines: list[tuple[int, int]], *, email: str | None = None) -> int:
    """A paid central order of (variant_id, quantity) lines; returns its id."""
    with db.transaction() as session:
        customer = register_customer(
            session, clock=clock, email=email or f"buyer-{uuid.uuid4().hex[:8]}@example.com",
            password="long enough password")
        cart = create_cart(session, clock=clock, currency="GBP", customer_id=customer.id)
        for variant_id, quantity in lines:
            set_line(session, clock=clock, cart=cart, variant_id=variant_id, quantity=quantity)
        customer_id, cart_id = customer.id, cart.id
    return flows.checkout(
        db, clock=clock, settings=settings, provider=LocalCardProvider(db.sessions, clock),
        policy=checkout_policy(),
        request=flows.CheckoutRequest(customer_id, cart_id, CARD, ADDRESS,
                                      f"ref-{uuid.uuid4().hex}"))
