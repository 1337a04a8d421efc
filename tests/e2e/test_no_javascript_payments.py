"""Paying with JavaScript switched off, on the local provider: the drop purchase and the cart
checkout send the shopper to the provider's hosted card page, which comes back to the form
with the card ready and what they typed kept; confirming there pays the order."""

from __future__ import annotations

from sqlalchemy import select

from dropline.customers.service import register_customer
from dropline.orders.models import Order, OrderStatus
from tests.builders import PASSWORD, make_location, make_product
from tests.drops.builders import make_drop


def _sign_in(page, url: str, email: str, then: str) -> None:
    page.goto(f"{url}/sign-in?next={then}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{then}")


def _address(page) -> None:
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 Fournier St")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode", exact=True).fill("E1 6QE")


def _card_at_the_provider(page, number: str = "4242 4242 4242 4242") -> None:
    page.get_by_role("heading", name="Pay by card").wait_for()
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Continue to").click()


def test_a_drop_is_bought_without_javascript_through_the_hosted_card_page(
        browser, live_server, db, clock):
    world = make_drop(db, clock, cap=3, limit=1)
    with db.transaction() as session:
        register_customer(session, clock=clock, email="nojs@example.com", password=PASSWORD)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, "nojs@example.com", f"/drops/{world.drop_id}/me")
        _address(page)
        page.get_by_role("button", name="Pay now").click()
        _card_at_the_provider(page)

        assert page.get_by_text("Card ending 4242, given to the payment provider.").is_visible()
        assert page.get_by_label("Full name").input_value() == "Ada Lovelace"
        page.get_by_role("button", name="Pay now").click()
        page.wait_for_url("**/orders/*")
        assert page.get_by_text("Thank you: your order is placed.").is_visible()
    finally:
        context.close()
    with db.transaction() as session:
        assert session.scalars(select(Order.status)).all() == [OrderStatus.paid]


def test_a_cart_is_checked_out_without_javascript_through_the_hosted_card_page(
        browser, live_server, db, clock):
    make_location(db)
    make_product(db, clock, name="Fig Candle", price=2400, stock=3)
    with db.transaction() as session:
        register_customer(session, clock=clock, email="cart@example.com", password=PASSWORD)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, "cart@example.com", "/products/fig-candle")
        page.get_by_role("button", name="Add").first.click()
        page.goto(f"{live_server.url}/checkout")
        _address(page)
        page.get_by_role("button", name="Place order").click()
        _card_at_the_provider(page, "4000 0000 0000 0002")  # declined when charged
        page.get_by_role("button", name="Place order").click()
        assert page.get_by_role("alert").first.inner_text().startswith("the card was declined")

        page.get_by_role("button", name="Place order").click()
        _card_at_the_provider(page)
        assert page.get_by_label("Town or city").input_value() == "London"
        page.get_by_role("button", name="Place order").click()
        page.wait_for_url("**/orders/*")
    finally:
        context.close()
    with db.transaction() as session:
        assert OrderStatus.paid in session.scalars(select(Order.status)).all()
