"""The pop-up counter in real Chromium: a sale rung up with the network cut is kept in the
outbox, sent once the counter is back online, and is exactly one order; then the buyer is
signed up at the counter on the card kept from the sale (acquisition source "pop-up")."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dropline.admin.service import create_admin_user
from dropline.customers.models import Customer
from dropline.locations.models import Location, StockLevel
from dropline.memberships.models import Membership
from dropline.orders.models import Order, OrderStatus
from tests.builders import CONSOLE_PASSWORD
from tests.memberships.support import make_tier
from tests.popups.support import open_popup


@pytest.fixture(autouse=True)
def mail(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPLINE_EMAIL_DIR", str(tmp_path / "outbox"))
    return tmp_path / "outbox"


def _orders(db) -> list[Order]:
    with db.transaction() as session:
        return list(session.scalars(select(Order)))


def _sign_in(page, url: str, db, clock) -> None:
    with db.transaction() as session:
        create_admin_user(session, clock=clock, email="staff@brand.example",
                          password=CONSOLE_PASSWORD)
    page.goto(url + "/counter/popup-test")  # -> /admin/counter/... -> the console sign-in
    page.get_by_label("Email").fill("staff@brand.example")
    page.get_by_label("Password").fill(CONSOLE_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("counter").wait_for()


def test_an_offline_counter_sale_is_sent_once_on_reconnect_and_the_buyer_joins(
        page, live_server, db, clock, mail):
    shop = open_popup(db, clock, stock=(10, 5))
    make_tier(db, clock, slug="friends", price=900)
    _sign_in(page, live_server.url, db, clock)
    sales = []
    page.on("request", lambda r: sales.append(r.url) if r.url.endswith("/sales") else None)

    page.context.set_offline(True)
    page.get_by_label("Find a product").fill("candle")
    page.get_by_role("button", name="Add Fig Candle").click()
    page.get_by_label("Buyer's email (for the receipt)").fill("grace@example.com")
    page.get_by_role("button", name="Take payment").click()

    page.get_by_text("Offline: sale queued").wait_for()
    page.get_by_test_id("queue").get_by_text("sale to grace@example.com").wait_for()
    assert page.get_by_test_id("net-state").inner_text() == "offline"
    assert _orders(db) == []

    page.context.set_offline(False)
    page.get_by_text("Paid: order #").wait_for()
    assert page.get_by_test_id("queue").locator("li").count() == 0
    [order] = _orders(db)
    assert order.status is OrderStatus.paid and order.total_amount == 2500
    with db.transaction() as session:
        assert session.scalar(select(StockLevel.on_hand).join(
            Location, Location.id == StockLevel.location_id).where(
            Location.code == "popup-test", StockLevel.variant_id == shop.variants[1])) == 4

    page.reload()  # nothing is left to resend
    page.get_by_test_id("counter").wait_for()
    page.evaluate("async () => { const { outbox } = await import('/static/pwa/outbox.js');"
                  " await outbox.flush(); }")
    assert len(_orders(db)) == 1 and len(sales) == 1
    assert len(list(mail.glob("popup-receipt-*.eml"))) == 1

    # Sign-up at the counter, after another sale (the page keeps the last one).
    page.get_by_label("Find a product").fill("fig leaf")
    page.get_by_role("button", name="Add Fig Leaf").click()
    page.get_by_label("Buyer's email (for the receipt)").fill("hal@example.com")
    page.get_by_role("button", name="Take payment").click()
    page.get_by_test_id("after-sale").wait_for()
    page.get_by_label("Tier").select_option("friends")
    page.get_by_role("button", name="Sign up with this card").click()
    page.get_by_text("Welcome in: membership").wait_for()

    with db.transaction() as session:
        membership = session.scalar(select(Membership))
        buyer = session.get(Customer, membership.customer_id)
        assert (buyer.email, buyer.acquisition_source, buyer.acquisition_campaign) == (
            "hal@example.com", "pop-up", "popup-test")
        assert membership.status.value == "active"
        assert session.scalar(select(func.count()).select_from(Order)) == 2
