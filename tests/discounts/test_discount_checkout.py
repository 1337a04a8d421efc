"""Discount codes through every door: the admin API and the CLI manage them; the checkout API,
the quote and the checkout page take them, and refuse them with a reason of their own (a
problem type per reason; on the page, beside the field) without changing anything. The order,
its receipt and its refunds show the code."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.adapters.payments import LocalCardProvider
from dropline.catalog.service import set_stock
from dropline.cli import app
from dropline.discounts.models import DiscountCode, DiscountRedemption
from dropline.discounts.rules import DiscountKind, Stacking
from dropline.errors import PaymentDeclined
from dropline.locations.models import StockLevel
from dropline.memberships.rules import MemberPriceKind
from dropline.notifications.service import mail_context
from dropline.orders import flows
from dropline.orders.models import Order, OrderLine
from dropline.payments.models import Payment
from tests.builders import (
    ADDRESS,
    DECLINED_PM,
    api_token,
    card_of,
    cart_with,
    checkout_body,
    checkout_policy,
    make_location,
    make_product,
    sign_up,
)
from tests.discounts.builders import make_code
from tests.drops.builders import make_drop
from tests.memberships.support import join, make_tier
from tests.orders.test_races import _shopper_with_cart
from tests.storefront.builders import CHECKOUT_FORM

runner = CliRunner()


def _pay(client, cart_id, code):
    return client.post("/api/v1/checkout", json={**checkout_body(cart_id), "discount_code": code},
                       headers={"Idempotency-Key": str(uuid.uuid4())})


def _state(db):
    with db.transaction() as session:
        return (session.scalar(select(func.count()).select_from(Order)),
                session.scalar(select(func.sum(DiscountCode.uses))),
                session.scalar(select(func.sum(StockLevel.on_hand))))


def test_an_admin_creates_lists_and_withdraws_a_code_with_its_scope(client, db, clock):
    headers = api_token(db, clock, "discounts:manage")
    body = {"code": "spring10", "kind": "percentage", "percent": 10,
            "family_slugs": ["eau-de-parfum"], "max_uses": 500, "max_uses_per_customer": 1,
            "ends_at": "2026-04-01T00:00:00Z"}

    created = client.post("/api/v1/admin/discounts", json=body, headers=headers)
    again = client.post("/api/v1/admin/discounts", json=body, headers=headers)
    no_scope = client.post("/api/v1/admin/discounts", json=body,
                           headers=api_token(db, clock, "orders:read"))
    bad = client.post("/api/v1/admin/discounts", json={**body, "code": "X", "percent": 0},
                      headers=headers)
    listed = client.get("/api/v1/admin/discounts", headers=headers)
    withdrawn = client.post(f"/api/v1/admin/discounts/{created.json()['id']}/disable",
                            headers=headers)

    assert created.status_code == 201, created.text
    assert (created.json()["code"], created.json()["scope"]["family_slugs"]) == (
        "SPRING10", ["eau-de-parfum"])
    assert again.status_code == 409 and no_scope.status_code == 403
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json")
    assert [c["code"] for c in listed.json()] == ["SPRING10"]
    assert withdrawn.json()["disabled_at"] is not None


def test_checkout_with_a_code_charges_the_discounted_total_and_the_receipt_shows_it(
        client, db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=1999, stock=5)
    make_code(db, clock, code="SPRING10", percent=10)
    sign_up(client)
    cart = cart_with(client, variant, quantity=2)

    quoted = client.post("/api/v1/checkout/quote",
                         json={"cart_id": cart, "discount_code": "spring10"})
    paid = _pay(client, cart, "spring10")

    assert quoted.status_code == 200, quoted.text
    assert paid.status_code == 201, paid.text
    order = paid.json()
    # 2 x 19.99 = 39.98, 10 % off = 3.99 (rounded down), under the free-delivery threshold.
    assert (order["subtotal_amount"], order["discount_amount"], order["shipping_amount"],
            order["total_amount"]) == (3998, 399, 395, 3994)
    assert order["discount_code"] == "SPRING10" and order["lines"][0]["discount_amount"] == 399
    assert quoted.json()["total_amount"] == order["total_amount"] == order["payments"][0]["amount"]
    page = client.get(f"/orders/{order['id']}").text
    assert "Discount code SPRING10" in page and "−£3.99" in page
    with db.transaction() as session:
        mail = mail_context(session, order=session.get(Order, order["id"]), payload={},
                            shop_name="Shop", public_url="http://shop")
        redemption = session.scalar(select(DiscountRedemption))
    assert (mail["discount_code"], mail["discount"]) == ("SPRING10", "£3.99")
    assert (redemption.order_id, redemption.discount_amount) == (order["id"], 399)


def test_a_free_delivery_code_makes_delivery_cost_nothing(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    make_code(db, clock, code="SHIPFREE", kind=DiscountKind.free_delivery, percent=0)
    sign_up(client)

    paid = _pay(client, cart_with(client, variant), "SHIPFREE")

    assert (paid.json()["shipping_amount"], paid.json()["total_amount"]) == (0, 1000)
    with db.transaction() as session:
        assert session.scalar(select(DiscountRedemption.delivery_discount_amount)) == 395


NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(("spec", "status", "problem"), [
    ({"ends_at": NOW - timedelta(days=1)}, 422, "discount-expired"),
    ({"starts_at": NOW + timedelta(days=1)}, 422, "discount-not-started"),
    ({"max_uses": 1}, 409, "discount-cap-reached"),
    ({"max_uses_per_customer": 1}, 409, "discount-customer-cap-reached"),
    ({"family_slugs": ["candles"]}, 422, "discount-not-applicable"),
    (None, 422, "discount-unknown"),
])
def test_a_refused_code_says_why_in_its_own_problem_type_and_changes_nothing(
        client, db, clock, spec, status, problem):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    if spec is not None:
        code_id = make_code(db, clock, code="SPRING10", **spec)
    sign_up(client)
    if spec and ("max_uses" in spec or "max_uses_per_customer" in spec):
        assert _pay(client, cart_with(client, variant), "SPRING10").status_code == 201
        with db.transaction() as session:  # a use taken by this very customer
            assert session.get(DiscountCode, code_id).uses == 1
    cart = cart_with(client, variant)
    before = _state(db)

    quoted = client.post("/api/v1/checkout/quote", json={"cart_id": cart,
                                                         "discount_code": "SPRING10"})
    refused = _pay(client, cart, "SPRING10")

    for answer in (quoted, refused):
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"].endswith("/" + problem)
        assert answer.json()["field"] == "discount_code"
    assert _state(db) == before


def test_a_declined_payment_gives_the_code_s_use_back(db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    code_id = make_code(db, clock, code="ONCE", max_uses=1)
    customer_id, cart_id = _shopper_with_cart(db, clock, settings, variant, 0)

    with pytest.raises(PaymentDeclined):
        flows.checkout(db, clock=clock, settings=settings,
                       provider=LocalCardProvider(db.sessions, clock), policy=checkout_policy(),
                       request=flows.CheckoutRequest(customer_id, cart_id, card_of(DECLINED_PM),
                                                     ADDRESS, "declined-1",
                                                     discount_code="once"))

    with db.transaction() as session:
        assert session.get(DiscountCode, code_id).uses == 0
        assert session.scalar(select(func.count()).select_from(DiscountRedemption)) == 0


def test_a_member_gets_both_or_the_better_of_the_two_as_the_code_states(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=4000, stock=5)
    customer = sign_up(client)
    tier = make_tier(db, clock, member_price_kind=MemberPriceKind.percent, member_price_value=10)
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=customer["id"],
         tier_id=tier)
    make_code(db, clock, code="BOTH", percent=10)
    make_code(db, clock, code="ALONE5", percent=5, stacking=Stacking.instead_of_member_price)
    make_code(db, clock, code="ALONE25", percent=25, stacking=Stacking.instead_of_member_price)
    cart = cart_with(client, variant)

    def quote(code):
        return client.post("/api/v1/checkout/quote", json={"cart_id": cart,
                                                           "discount_code": code})

    both, alone5, alone25 = quote("BOTH"), quote("ALONE5"), quote("ALONE25")

    assert (both.json()["subtotal_amount"], both.json()["discount_amount"]) == (3600, 360)
    assert alone5.status_code == 422
    assert alone5.json()["type"].endswith("/discount-not-better-than-member-price")
    assert (alone25.json()["subtotal_amount"], alone25.json()["discount_amount"]) == (4000, 1000)


def test_cancelling_some_discounted_units_refunds_them_less_their_share_of_the_code(
        client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    make_code(db, clock, code="TENOFF", kind=DiscountKind.fixed, amount=1000, percent=0)
    sign_up(client)
    order = _pay(client, cart_with(client, variant, quantity=4), "TENOFF").json()
    line_id = order["lines"][0]["id"]

    cancelled = client.post(f"/api/v1/admin/orders/{order['id']}/cancel",
                            json={"lines": [{"line_id": line_id, "quantity": 1}]},
                            headers={**api_token(db, clock, "orders:refund"),
                                     "Idempotency-Key": "cancel-one"})

    assert cancelled.status_code == 200, cancelled.text
    # 4 units at 10.00 with 10.00 off: each unit cost 7.50.
    assert cancelled.json()["refunds"][0]["amount"] == 750


def test_the_checkout_page_applies_a_code_and_names_a_refused_one_beside_its_field(
        client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    make_code(db, clock, code="SPRING10", percent=10)
    make_code(db, clock, code="OLD", ends_at=NOW - timedelta(days=1))
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant, "quantity": 1})

    applied = client.get("/checkout", params={"discount_code": "spring10"}).text
    refused = client.get("/checkout", params={"discount_code": "old"}).text

    assert "Discount code SPRING10" in applied and 'data-total="1295"' in applied
    assert 'name="discount_code" value="SPRING10"' in applied  # carried into the payment form
    assert re.search(r'id="discount_code-error"[^>]*>the code OLD expired', refused)
    assert 'data-total="1395"' in refused  # quoted without it
    key = re.search(r'name="key" value="([^"]+)"', applied).group(1)

    placed = client.post("/checkout", follow_redirects=False,
                         data={**CHECKOUT_FORM, "key": key, "discount_code": "SPRING10"})

    assert placed.status_code == 303, placed.text[:800]
    with db.transaction() as session:
        order = session.scalar(select(Order))
        assert (order.discount_code, order.total_amount) == ("SPRING10", 1295)
        assert session.scalar(select(Payment.amount)) == 1295
        assert session.scalar(select(OrderLine.discount_amount)) == 100


def test_a_refused_code_on_the_checkout_form_is_named_beside_the_field(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    make_code(db, clock, code="USED", max_uses=1)
    with db.transaction() as session:
        session.get(DiscountCode, session.scalar(select(DiscountCode.id))).uses = 1
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant, "quantity": 1})

    refused = client.post("/checkout", data={**CHECKOUT_FORM, "key": "k1",
                                             "discount_code": "USED"})

    assert refused.status_code == 409
    assert re.search(r'id="discount_code-error"[^>]*>the code USED has been used up',
                     refused.text)
    assert _state(db)[0] == 0


@pytest.mark.parametrize("command", ["create", "list", "show", "disable"])
def test_every_discounts_command_documents_itself_with_an_example(command):
    result = runner.invoke(app, ["discounts", command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "Example: dropline discounts" in result.output


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)


def test_codes_are_created_shown_and_withdrawn_from_the_cli(cli_env, db):
    def run(*args):
        return runner.invoke(app, ["discounts", *args], terminal_width=200)

    created = run("create", "spring10", "--percent", "10", "--family", "eau-de-parfum",
                  "--until", "2026-04-01", "--max-uses", "500", "--per-customer", "1")
    twice = run("create", "other", "--percent", "10", "--free-delivery")
    shown = run("show", "SPRING10")
    withdrawn = run("disable", "spring10")

    assert created.exit_code == 0, created.output
    assert "code  SPRING10" in created.output and "uses  0/500 (max 1 each)" in created.output
    assert twice.exit_code == 2 and "exactly one of" in twice.output
    assert "scope  family slug: eau-de-parfum" in shown.output
    assert withdrawn.exit_code == 0 and "state  withdrawn" in withdrawn.output
    with db.transaction() as session:
        code = session.scalar(select(DiscountCode))
        assert (code.ends_at, code.disabled_at is not None) == (
            datetime(2026, 4, 1, tzinfo=UTC), True)


def test_a_drop_scoped_code_covers_that_drop_s_variants_and_a_tier_code_its_members(
        client, db, clock):
    world = make_drop(db, clock, variants=1, price=3000)
    _, other = make_product(db, clock, price=3000, stock=5)
    with db.transaction() as session:  # the drop's variant also sells through the cart
        set_stock(session, clock=clock, location_code="central",
                  variant_id=world.variant_ids[0], on_hand=5, actor="test")
    make_code(db, clock, code="DROPONLY", drop_ids=[world.drop_id])
    make_code(db, clock, code="INNER", tier_slugs=["inner-circle"])
    customer = sign_up(client)
    cart = cart_with(client, world.variant_ids[0])
    client.put(f"/api/v1/carts/{cart}/lines/{other}", json={"quantity": 1})

    def quote(code):
        return client.post("/api/v1/checkout/quote", json={"cart_id": cart,
                                                           "discount_code": code})

    drop_only, not_member = quote("DROPONLY"), quote("INNER")
    tier = make_tier(db, clock, slug="inner-circle")
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=customer["id"],
         tier_id=tier)
    member = quote("INNER")

    by_variant = {line["variant_id"]: line["discount_amount"]
                  for line in drop_only.json()["lines"]}
    assert by_variant == {world.variant_ids[0]: 300, other: 0}
    assert not_member.status_code == 422 and not_member.json()["reason"] == "tier"
    assert member.status_code == 200 and member.json()["discount_amount"] > 0
