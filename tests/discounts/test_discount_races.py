"""Usage caps under concurrent checkouts: real transactions on their own connections, racing
(on PostgreSQL they interleave for real; on SQLite writers are serialised and the same
invariants hold). The counter is the cap: one conditional UPDATE in each checkout's
transaction, so a code is never used more often than it allows."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.carts.service import create_cart, set_line
from dropline.customers.service import register_customer
from dropline.db import Database
from dropline.discounts.errors import DiscountCapReached, DiscountCustomerCapReached
from dropline.discounts.models import DiscountCode, DiscountRedemption
from dropline.locations.models import StockLevel
from dropline.orders import flows
from dropline.orders.models import Order, OrderStatus
from tests.builders import ADDRESS, card_of, checkout_policy, make_location, make_product
from tests.discounts.builders import make_code
from tests.orders.test_races import race

CARD = card_of()
SHOPPERS = 300
USES = 100


def _carts(db, clock, variant_id: int, n: int, *, one_customer: bool = False):
    """n (customer id, open cart id) pairs: n shoppers, or one shopper with n carts."""
    with db.transaction() as session:
        pairs = []
        customer = None
        for i in range(n):
            if customer is None or not one_customer:
                customer = register_customer(session, clock=clock,
                                             email=f"codes{i}@example.com",
                                             password="long enough password")
            cart = create_cart(session, clock=clock, currency="GBP", customer_id=customer.id)
            set_line(session, clock=clock, cart=cart, variant_id=variant_id, quantity=1)
            pairs.append((customer.id, cart.id))
        return pairs


def _checkout(db, clock, settings, provider, policy, customer_id, cart_id, i):
    return flows.checkout(db, clock=clock, settings=settings, provider=provider, policy=policy,
                          request=flows.CheckoutRequest(
                              customer_id, cart_id, CARD, ADDRESS, f"code-race-{i}",
                              discount_code="launch100"))


def test_a_code_with_100_uses_under_300_concurrent_checkouts_is_used_exactly_100_times(
        db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=2000, stock=SHOPPERS)
    code_id = make_code(db, clock, code="LAUNCH100", percent=20, max_uses=USES)
    shoppers = _carts(db, clock, variant, SHOPPERS)
    # The checkouts' own engine: 300 threads share 16 connections, as a web process's threads
    # share its pool (the server is shared; its connection limit is not ours to take).
    racing = Database(db.url, pool_size=16, max_overflow=0, pool_timeout=600)
    provider, policy = LocalCardProvider(racing.sessions, clock), checkout_policy()
    try:
        with ThreadPoolExecutor(max_workers=SHOPPERS) as pool:
            futures = [pool.submit(_checkout, racing, clock, settings, provider, policy,
                                   *shoppers[i], i) for i in range(SHOPPERS)]
            outcomes = []
            for future in futures:
                try:
                    outcomes.append(type(future.result()).__name__)
                except Exception as exc:  # the refusals are counted below
                    outcomes.append(type(exc).__name__)
    finally:
        racing.dispose()

    assert Counter(outcomes) == {"int": USES, DiscountCapReached.__name__: SHOPPERS - USES}
    with db.transaction() as session:
        assert session.get(DiscountCode, code_id).uses == USES
        assert session.scalar(select(func.count()).select_from(DiscountRedemption)) == USES
        paid = session.scalars(select(Order).where(Order.status == OrderStatus.paid)).all()
        assert len(paid) == USES
        assert {(o.discount_code, o.discount_amount, o.total_amount) for o in paid} == {
            ("LAUNCH100", 400, 2000 - 400 + 395)}
        # A refused checkout took nothing: the stock holds the 200 units not sold.
        assert session.scalar(select(StockLevel.on_hand)) == SHOPPERS - USES


def test_one_customer_racing_a_once_per_customer_code_gets_it_once(db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=2000, stock=10)
    code_id = make_code(db, clock, code="LAUNCH100", max_uses_per_customer=1)
    carts = _carts(db, clock, variant, 8, one_customer=True)
    provider, policy = LocalCardProvider(db.sessions, clock), checkout_policy()

    results = race(8, lambda i: _checkout(db, clock, settings, provider, policy, *carts[i], i))

    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"int": 1, DiscountCustomerCapReached.__name__: 7}, results
    with db.transaction() as session:
        assert session.get(DiscountCode, code_id).uses == 1
        assert session.scalar(select(func.count()).select_from(Order)) == 1
