"""`dropline demo`: a believable, reconciled, idempotent demo shop that others can extend."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dropline.admin.models import AdminUser, ApiToken
from dropline.catalog.models import ConditionGrade, Product, Variant
from dropline.catalog.rules import disclosure_problem
from dropline.customers.models import Customer
from dropline.demo import DemoContext, DemoStep, registered_steps, seed_demo
from dropline.demo.brand import CURRENCY, PRODUCTS
from dropline.demo.history import plan_orders, plan_shoppers
from dropline.errors import InvalidState
from dropline.events.models import DomainEvent
from dropline.locations.models import Location, StockLevel
from dropline.models import metadata
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import reconciles
from dropline.orders.service import order_payload
from dropline.payments.models import Payment, PaymentStatus, Refund
from tests.builders import cart_with, checkout_body, make_location, make_product, sign_up

CUSTOMERS = 40


def _seed(db, settings, clock, **kwargs):
    kwargs.setdefault("customers", CUSTOMERS)
    return seed_demo(db, settings=settings, clock=clock, seed=kwargs.pop("seed", 7), **kwargs)


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _empty(db):
    with db.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def _fingerprint(db):
    """The shop as data, without ids (PostgreSQL does not reuse them after a delete)."""
    with db.transaction() as s:
        return (
            s.execute(select(Customer.email, Customer.name, Customer.acquisition_source,
                             Customer.acquisition_campaign, Customer.created_at)
                      .order_by(Customer.email)).all(),
            s.execute(select(Order.email, Order.created_at, Order.status, Order.total_amount,
                             Order.discount_amount, Order.shipping_amount, Order.refunded_amount,
                             Order.fulfilment_path, Location.code)
                      .join(Location, Location.id == Order.location_id)
                      .order_by(Order.created_at, Order.email)).all(),
            s.execute(select(Order.email, Order.created_at, OrderLine.sku, OrderLine.quantity)
                      .join(Order, Order.id == OrderLine.order_id)
                      .order_by(Order.created_at, Order.email, OrderLine.sku)).all(),
            s.execute(select(Location.code, Variant.sku, StockLevel.on_hand)
                      .join(Location, Location.id == StockLevel.location_id)
                      .join(Variant, Variant.id == StockLevel.variant_id)
                      .order_by(Location.code, Variant.sku)).all(),
        )


# ------------------------------------------------------------------ pure: the invented history


def test_purchase_history_looks_like_bgnbd_most_buy_once_some_repeat_a_few_are_loyal(clock):
    now = clock.now()
    variant_ids = {v.sku: i for i, v in enumerate((v for p in PRODUCTS for v in p.variants), 1)}
    shoppers = plan_shoppers(random.Random(1), count=1000, now=now)

    orders = plan_orders(random.Random(2), shoppers, now=now, variant_ids=variant_ids,
                         flat_shipping=395, free_shipping_threshold=5000)

    per_buyer = Counter(order.shopper.index for order in orders)
    once = sum(1 for n in per_buyer.values() if n == 1)
    loyal = sum(1 for n in per_buyer.values() if n >= 4)
    assert 0.5 < once / len(per_buyer) < 0.8
    assert 0.03 < loyal / len(per_buyer) < 0.2
    assert all(now - timedelta(days=366) < s.signed_up_at < now for s in shoppers)
    assert all(o.shopper.signed_up_at < o.created_at < o.paid_at < now for o in orders)
    paths = Counter(order.fulfilment_path for order in orders)
    assert paths.most_common(1)[0][0] == "central"
    assert paths["hub-window"] > 0 and paths["pop-up"] > 0
    assert {s.source for s in shoppers} == {"instagram", "tiktok", "pop-up", "referral",
                                            "newsletter", "direct", "google"}
    assert len({o.totals.total_amount for o in orders}) > 100  # spend varies


@pytest.mark.parametrize("seed", range(12))
def test_any_seed_plans_a_history_inside_the_year_whose_totals_reconcile(clock, seed):
    now = clock.now()
    variant_ids = {v.sku: i for i, v in enumerate((v for p in PRODUCTS for v in p.variants), 1)}
    shoppers = plan_shoppers(random.Random(seed), count=400, now=now)

    orders = plan_orders(random.Random(seed), shoppers, now=now, variant_ids=variant_ids,
                         flat_shipping=395, free_shipping_threshold=5000)

    for order in orders:
        totals = order.totals
        assert now - timedelta(days=366) < order.created_at < order.paid_at < now
        assert totals.subtotal_amount == sum(line.line_total_amount for line in order.lines)
        assert 0 <= totals.discount_amount < totals.subtotal_amount
        assert totals.total_amount > 0
        assert 0 <= order.refunded_amount <= totals.total_amount
        assert all(order.paid_at < refund.at < now for refund in order.refunds)


def test_the_same_random_stream_gives_the_same_history(clock):
    variant_ids = {v.sku: i for i, v in enumerate((v for p in PRODUCTS for v in p.variants), 1)}

    def plan(seed):
        shoppers = plan_shoppers(random.Random(seed), count=50, now=clock.now())
        return shoppers, plan_orders(random.Random(seed), shoppers, now=clock.now(),
                                     variant_ids=variant_ids, flat_shipping=395,
                                     free_shipping_threshold=5000)

    assert plan(3) == plan(3)
    assert plan(3) != plan(4)


# ------------------------------------------------------------------------ seeding the database


def test_demo_catalog_has_families_sizes_and_graded_variants_with_honest_disclosures(
        db, settings, clock):
    summary = _seed(db, settings, clock)

    with db.transaction() as s:
        assert 15 <= _count(s, Product) <= 25
        assert summary["products"] == str(_count(s, Product))
        variants = s.scalars(select(Variant)).all()
        assert all(v.currency == CURRENCY and v.price_amount > 0 and v.weight_grams > 0
                   for v in variants)
        graded = [v for v in variants if v.condition_grade is not ConditionGrade.new]
        assert {v.condition_grade for v in graded} == {
            ConditionGrade.refurbished_a, ConditionGrade.refurbished_b, ConditionGrade.used}
        assert all(disclosure_problem(v.condition_grade, v.condition_disclosure) is None
                   and len(v.condition_disclosure) > 40 for v in graded)
        kinds = Counter(kind for kind in s.scalars(select(Location.kind)))
        assert kinds == {"central-warehouse": 1, "micro-hub": 4, "micro-factory": 1, "pop-up": 3}
        assert s.scalar(select(Location.code).where(Location.kind == "central-warehouse")) \
            == settings.shop.default_location_code
        # Live checkout takes stock from the central warehouse: it holds every variant.
        central = set(s.scalars(select(StockLevel.variant_id).join(Location).where(
            Location.code == settings.shop.default_location_code, StockLevel.on_hand > 0)))
        assert central == {v.id for v in variants}


def test_every_demo_order_reconciles_and_has_one_succeeded_payment_of_its_total(
        db, settings, clock):
    _seed(db, settings, clock)

    with db.transaction() as s:
        orders = s.scalars(select(Order)).all()
        assert len(orders) >= CUSTOMERS // 2
        lines = {}
        for line in s.scalars(select(OrderLine)):
            lines.setdefault(line.order_id, []).append(
                (line.unit_price_amount, line.quantity, line.line_total_amount))
        payments = {}
        for payment in s.scalars(select(Payment)):
            payments.setdefault(payment.order_id, []).append(payment)
        refunds = Counter()
        for refund in s.scalars(select(Refund)):
            refunds[refund.order_id] += refund.amount
        for order in orders:
            assert reconciles(subtotal_amount=order.subtotal_amount,
                              discount_amount=order.discount_amount,
                              shipping_amount=order.shipping_amount,
                              total_amount=order.total_amount, line_totals=lines[order.id])
            assert 0 <= order.refunded_amount <= order.total_amount
            assert order.refunded_amount == refunds[order.id]
            expected = (OrderStatus.paid if order.refunded_amount == 0 else
                        OrderStatus.refunded if order.refunded_amount == order.total_amount
                        else OrderStatus.partially_refunded)
            assert order.status is expected
            [payment] = payments[order.id]
            assert (payment.status, payment.provider, payment.amount) == (
                PaymentStatus.succeeded, "demo", order.total_amount)
            assert order.created_at < order.paid_at < clock.now()
        assert Counter(o.status for o in orders)[OrderStatus.paid] > len(orders) * 0.8


def test_demo_events_carry_what_telemetry_cuts_by_at_their_historical_time(db, settings, clock):
    _seed(db, settings, clock)

    with db.transaction() as s:
        events = s.scalars(select(DomainEvent).where(DomainEvent.type.in_(
            ["customer.registered", "order.created", "order.paid", "order.refunded",
             "order.fulfilment_decided"]))
            .order_by(DomainEvent.id)).all()
        by_order = {}
        for event in events:
            if event.subject_type == "order":
                by_order.setdefault(int(event.subject_id), {})[event.type] = event
        customers = {c.id: c for c in s.scalars(select(Customer))}
        registered = {int(e.subject_id): e for e in events if e.type == "customer.registered"}
        assert registered.keys() == customers.keys()
        assert all(registered[cid].occurred_at == c.created_at
                   and registered[cid].payload["acquisition_source"] == c.acquisition_source
                   for cid, c in customers.items())
        for order in s.scalars(select(Order)):
            created, paid = by_order[order.id]["order.created"], by_order[order.id]["order.paid"]
            # The same payload the checkout flow would have written (the cart checkout adds
            # its delivery and discount code).
            placed = order_payload(s, order)
            decided = by_order[order.id].get("order.fulfilment_decided")
            if decided is not None:  # decided after payment: placed with another path
                assert decided.payload["fulfilment_path"] == order.fulfilment_path
                placed["fulfilment_path"] = decided.payload["previous_fulfilment_path"]
            assert created.payload.items() >= placed.items()
            assert paid.payload == {**placed, "decline_code": None}
            assert created.payload["product_families"]
            assert created.payload["acquisition_source"] == customers[order.customer_id] \
                .acquisition_source
            assert (created.occurred_at, paid.occurred_at) == (order.created_at, order.paid_at)
            assert created.customer_id == order.customer_id
            refunded = by_order[order.id].get("order.refunded")
            assert (refunded is not None) == (order.refunded_amount > 0)
            if refunded is not None:
                assert refunded.payload["refunded_amount"] == order.refunded_amount
        # The historical log reads in time order (the batch's decisions are written as it
        # runs, now, like the demo's other live writes, before the history is appended).
        times = [event.occurred_at for event in events
                 if event.type != "order.fulfilment_decided"]
        assert times == sorted(times)


def test_seeding_twice_changes_nothing_and_says_so(db, settings, clock):
    first = _seed(db, settings, clock)

    def counts():
        with db.transaction() as s:
            return [_count(s, model) for model in (Product, Customer, Order, Payment, Refund,
                                                  DomainEvent, AdminUser, ApiToken)]

    before = counts()
    clock.advance(days=3)
    second = _seed(db, settings, clock, customers=500, seed=99)

    assert counts() == before
    assert second["status"].startswith("already seeded")
    assert "seed 7" in second["status"]
    assert {k: second[k] for k in ("products", "customers", "orders", "revenue")} == \
        {k: first[k] for k in ("products", "customers", "orders", "revenue")}


def test_the_same_seed_gives_the_same_shop_and_another_seed_another(db, settings, clock):
    _seed(db, settings, clock)
    shop = _fingerprint(db)
    _empty(db)
    _seed(db, settings, clock)
    again = _fingerprint(db)
    _empty(db)
    _seed(db, settings, clock, seed=8)

    assert again == shop
    assert _fingerprint(db)[0] != shop[0]


def test_a_database_holding_another_shop_is_refused_and_left_untouched(db, settings, clock):
    make_location(db)
    make_product(db, clock, name="Someone else's candle")

    with pytest.raises(InvalidState, match="already holds products"):
        _seed(db, settings, clock)

    with db.transaction() as s:
        assert _count(s, Product) == 1
        assert _count(s, Customer) == 0
        assert _count(s, DomainEvent, DomainEvent.type == "demo.seeded") == 0


def test_summary_names_the_shop_counts_revenue_and_the_demo_credentials(db, settings, clock):
    summary = _seed(db, settings, clock)

    with db.transaction() as s:
        orders = _count(s, Order)
        assert summary["customers"] == str(CUSTOMERS)
        assert summary["orders"].startswith(f"{orders} paid")
        assert summary["locations"] == "9"  # with the third pop-up (popups demo)
    assert summary["shop"] == "Ember & Fig — London perfumers"
    assert "demo" in summary["note"]
    assert summary["revenue"].startswith("£")
    assert summary["admin login"] == "admin@dropline.example / ember-and-fig-demo"
    assert summary["api token"].startswith("dl_")


# ------------------------------------------------------------------- the demo as a working shop


def test_storefront_lists_the_demo_products_and_shows_graded_disclosures(
        client, db, settings, clock):
    _seed(db, settings, clock)

    home = client.get("/")
    page = client.get("/products/stoneware-reed-diffuser")

    assert home.status_code == 200
    for name in ("Thames Fog eau de parfum", "The discovery set", "Stoneware reed diffuser",
                 "Tomato Leaf candle", "Bermondsey Tea refill, 100 ml"):
        assert name in home.text
    assert "graded stock" in home.text
    assert page.status_code == 200
    assert "Refurbished, grade B" in page.text
    assert "A hairline glaze craze on the base" in page.text


def test_a_shopper_can_check_out_a_demo_product(client, db, settings, clock):
    _seed(db, settings, clock)
    with db.transaction() as s:
        variant_id = s.scalar(select(Variant.id).where(Variant.sku == "EF-FIG-50"))
    sign_up(client)
    cart = cart_with(client, variant_id)

    response = client.post("/api/v1/checkout", json=checkout_body(cart),
                           headers={"Idempotency-Key": str(uuid.uuid4())})

    assert response.status_code == 201, response.text
    assert response.json()["total_amount"] == 9500  # over the free-shipping threshold


def test_the_demo_token_can_read_and_refund_demo_orders(client, db, settings, clock):
    summary = _seed(db, settings, clock)
    headers = {"Authorization": f"Bearer {summary['api token']}"}
    with db.transaction() as s:
        order = s.scalars(select(Order).where(Order.status == OrderStatus.paid)
                          .order_by(Order.id)).first()

    listed = client.get("/api/v1/admin/orders", headers=headers)
    refund = client.post(f"/api/v1/admin/orders/{order.id}/refunds",
                         headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                         json={"amount": 100, "reason": "demo goodwill"})

    assert listed.status_code == 200 and listed.json()
    assert refund.status_code == 201, refund.text
    with db.transaction() as s:
        assert s.get(Order, order.id).refunded_amount == 100


# ------------------------------------------------------------------------------ extending it


def test_a_step_from_another_module_runs_in_order_and_sees_what_came_before(db, settings, clock):
    seen = {}

    def seed_loyalty(ctx: DemoContext) -> str:
        seen.update(customers=len(ctx.ids.customers), orders=len(ctx.ids.orders),
                    variants=len(ctx.ids.variants))
        member = min(ctx.ids.customers)
        ctx.record_later(at=ctx.now - timedelta(days=30), type="loyalty.joined",
                         subject_type="customer", subject_id=member, customer_id=member,
                         payload={"tier": "inner circle"})
        ctx.summary["loyalty members"] = "1"
        return "1 member"

    # Listed first, but its order (550) places it after the orders step (500).
    steps = [DemoStep("test-loyalty", 550, "Loyalty", seed_loyalty), *registered_steps()]
    summary = _seed(db, settings, clock, steps=steps)

    assert seen["customers"] == CUSTOMERS and seen["orders"] > 0 and seen["variants"] > 0
    assert summary["loyalty members"] == "1"
    with db.transaction() as s:
        event = s.scalar(select(DomainEvent).where(DomainEvent.type == "loyalty.joined"))
        assert event.occurred_at == clock.now() - timedelta(days=30)
        marker = s.scalar(select(DomainEvent).where(DomainEvent.type == "demo.seeded"))
        names = marker.payload["steps"]
        assert names[:5] == ["catalog", "locations", "admin", "customers", "orders"]
        assert names[5] == "test-loyalty"


def test_a_new_step_does_not_change_what_the_other_steps_invent(db, settings, clock):
    def greedy(ctx: DemoContext) -> None:
        for _ in range(1000):
            ctx.rng.random()

    _seed(db, settings, clock)
    plain = _fingerprint(db)
    _empty(db)
    _seed(db, settings, clock, steps=[DemoStep("greedy", 350, "Greedy", greedy),
                                      *registered_steps()])

    assert _fingerprint(db) == plain


def test_built_in_steps_are_registered_in_order():
    names = [step.name for step in registered_steps()]

    assert names[:5] == ["catalog", "locations", "admin", "customers", "orders"]
