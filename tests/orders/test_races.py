"""Races with real concurrent transactions (threads, one connection each). On PostgreSQL (CI)
these interleave for real; on SQLite the engine serialises writers, and the same invariants hold.

Invariants: units sold never exceed stock; one order per checkout attempt; refunds never exceed
the order total."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.carts.service import create_cart, set_line
from dropline.config import Settings
from dropline.customers.service import register_customer
from dropline.errors import DomainError
from dropline.idempotency import service as idempotency
from dropline.locations.models import StockLevel
from dropline.orders import flows
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import LocalProviderCharge
from tests.builders import (
    ADDRESS,
    CREDIT_NOTES,
    card_of,
    checkout_policy,
    make_location,
    make_product,
)

CARD = card_of()


def race(n: int, work: Callable[[int], object]) -> list[object]:
    """Runs work(i) on n threads released together; returns results or raised errors."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _shopper_with_cart(db, clock, settings: Settings, variant_id: int, n: int, qty: int = 1):
    with db.transaction() as session:
        customer = register_customer(session, clock=clock, email=f"racer{n}@example.com",
                                     password="long enough password")
        cart = create_cart(session, clock=clock, currency="GBP", customer_id=customer.id)
        set_line(session, clock=clock, cart=cart, variant_id=variant_id, quantity=qty)
        return customer.id, cart.id


def _checkout(db, clock, settings, provider, customer_id, cart_id, reference):
    return flows.checkout(db, clock=clock, settings=settings, provider=provider,
                          policy=checkout_policy(),
                          request=flows.CheckoutRequest(customer_id, cart_id, CARD, ADDRESS,
                                                        reference))


def test_a_crowd_buying_the_last_units_never_oversells(db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    shoppers = [_shopper_with_cart(db, clock, settings, variant, n) for n in range(16)]
    provider = LocalCardProvider(db.sessions, clock)

    results = race(16, lambda i: _checkout(db, clock, settings, provider, *shoppers[i],
                                           reference=f"ref-{i}"))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"int": 5, "OutOfStock": 11}, results
    with db.transaction() as session:
        assert session.scalar(select(StockLevel.on_hand)) == 0
        assert session.scalar(select(func.count()).select_from(Order)
                              .where(Order.status == OrderStatus.paid)) == 5
        assert session.scalar(select(func.count()).select_from(LocalProviderCharge)) == 5


def test_the_same_checkout_attempt_racing_itself_makes_one_order_and_one_charge(db, clock,
                                                                                 settings):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    customer_id, cart_id = _shopper_with_cart(db, clock, settings, variant, 0)
    provider = LocalCardProvider(db.sessions, clock)
    fingerprint = idempotency.fingerprint("POST", "/api/v1/checkout", {"cart": cart_id})

    def attempt(_: int) -> object:
        outcome = idempotency.begin(db, clock=clock, principal=f"customer:{customer_id}",
                                    key="double-click", request_fingerprint=fingerprint,
                                    lease_seconds=30)
        if isinstance(outcome, idempotency.Replay):
            return "replayed"
        order_id = _checkout(db, clock, settings, provider, customer_id, cart_id,
                             outcome.reference)
        with db.transaction() as session:
            idempotency.complete(session, clock=clock, claim=outcome, status=201,
                                 body={"id": order_id})
        return order_id

    results = race(8, attempt)

    kinds = Counter(type(r).__name__ for r in results)
    assert kinds["int"] == 1, results
    assert set(kinds) <= {"int", "str", "RequestInFlight"}
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
        assert session.scalar(select(func.count()).select_from(LocalProviderCharge)) == 1
        assert session.scalar(select(StockLevel.on_hand)) == 4


def test_concurrent_refunds_never_exceed_the_order_total(db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=6000, stock=5)  # free shipping: total 6000
    customer_id, cart_id = _shopper_with_cart(db, clock, settings, variant, 0)
    provider = LocalCardProvider(db.sessions, clock)
    order_id = _checkout(db, clock, settings, provider, customer_id, cart_id, "paid-1")

    results = race(6, lambda i: flows.refund_order(
        db, clock=clock, provider=provider, credit_notes=CREDIT_NOTES, order_id=order_id,
        amount=2500, reason="race",
        actor="test", idempotency_key=f"refund-{i}"))

    succeeded = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(succeeded) == 2 and len(refused) == 4, results
    with db.transaction() as session:
        order = session.get(Order, order_id)
        assert order.refunded_amount == 5000
        assert order.status is OrderStatus.partially_refunded
