"""The cart and checkout pages show the total the shopper will pay: a member's price, plus
the price of the delivery window picked (recalculated by submitting the delivery form, no
JavaScript needed), and that total is exactly what the order charges. The order page then
says when and where it comes, in words."""

from __future__ import annotations

import re

from sqlalchemy import select

from dropline.adapters.payments import LocalCardProvider
from dropline.catalog.models import Product, Variant
from dropline.memberships.rules import MemberPriceKind
from dropline.orders.models import Order
from dropline.payments.models import Payment
from tests.builders import sign_up
from tests.fulfilment.builders import make_item, make_network, make_windows
from tests.memberships.support import join, make_tier
from tests.storefront.builders import CHECKOUT_FORM

NEAR_HUB = "E8 3PN"  # Dalston, a short drive from the test network's hub


def total_on(page: str) -> int:
    return int(re.search(r'data-total="(\d+)"', page).group(1))


def test_a_member_sees_and_pays_the_member_price_plus_the_window_price(client, db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, price=4000)
    window = make_windows(db)[-1]
    customer = sign_up(client)
    tier = make_tier(db, clock, member_price_kind=MemberPriceKind.percent, member_price_value=10)
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=customer["id"],
         tier_id=tier)
    client.post("/cart/lines", data={"variant_id": variant, "quantity": 2})

    cart = client.get("/cart").text
    standard = client.get("/checkout", params={"postcode": NEAR_HUB}).text
    picked = client.get("/checkout", params={"postcode": NEAR_HUB, "delivery": window}).text

    assert "£72.00" in cart and "you save £8.00" in cart  # 2 x 40.00 less 10 %
    assert total_on(cart) == 7200 + 0  # over the free-shipping threshold: standard is free
    assert f'value="{window}" checked' in picked
    assert f'name="delivery" value="{window}"' in picked  # carried into the payment form
    window_price = total_on(picked) - 7200
    assert window_price > 0, "the test needs a window that costs something"
    assert total_on(standard) == 7200
    key = re.search(r'name="key" value="([^"]+)"', picked).group(1)

    placed = client.post("/checkout", follow_redirects=False, data={
        **CHECKOUT_FORM, "postcode": NEAR_HUB, "delivery": str(window), "key": key})

    assert placed.status_code == 303, placed.text[:500]
    order_id = int(placed.headers["location"].split("/")[2].split("?")[0])
    with db.transaction() as session:
        order = session.get(Order, order_id)
        paid = session.scalar(select(Payment.amount).where(Payment.order_id == order_id))
    assert order.total_amount == paid == total_on(picked)
    page = client.get(placed.headers["location"]).text
    assert "hub-window" not in page and "local hub, in your window" in page
    assert CHECKOUT_FORM["line1"] in page and NEAR_HUB in page
    assert re.search(r"<time datetime=\"2026-03-02T[^\"]+\">Monday 02 March, \d\d:\d\d</time>",
                     page)


def test_a_guest_cart_shows_the_listed_total_and_a_window_no_longer_offered_is_not_priced(
        client, db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, price=1000)
    client.post("/cart/lines", data={"variant_id": variant, "quantity": 1})

    cart = client.get("/cart").text

    assert "Total" in cart and "£13.95" in cart  # 10.00 + 3.95 standard delivery
    sign_up(client)
    page = client.get("/checkout", params={"postcode": "ZZ", "delivery": "999999"}).text
    assert total_on(page) == 1395 and 'name="delivery" value="central"' in page


def test_a_member_is_shown_the_member_price_checkout_charges_and_others_are_not(
        client, db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, price=4000)
    with db.transaction() as session:
        product = session.get(Product, session.get(Variant, variant).product_id)
        product, slug = product.id, product.slug
    product_page = client.get(f"/products/{slug}").text
    guest = client.get("/api/v1/me/summary", params={"product": product}).json()
    customer = sign_up(client)
    not_yet = client.get("/api/v1/me/summary", params={"product": product}).json()
    tier = make_tier(db, clock, member_price_kind=MemberPriceKind.percent, member_price_value=10)
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=customer["id"],
         tier_id=tier)

    member = client.get("/api/v1/me/summary", params={"product": product}).json()
    client.post("/cart/lines", data={"variant_id": variant, "quantity": 1})

    assert f'data-member-price="{variant}" hidden' in product_page  # filled in by the script
    assert guest["member_prices"] == {} and not_yet["member_prices"] == {}
    assert member["member_prices"] == {
        str(variant): {"amount": 3600, "currency": "GBP", "formatted": "£36.00"}}
    assert total_on(client.get("/cart").text) == 3600 + 395  # the same price at checkout


def test_a_summary_for_a_product_that_is_not_a_number_is_a_422(client):
    answer = client.get("/api/v1/me/summary", params={"product": "fig"})

    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
