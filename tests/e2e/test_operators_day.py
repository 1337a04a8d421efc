"""An operator's day, whole (issue 24's must-show), in one browser on one shop: create a
product with an image, schedule a drop with a story, watch it sell on the live page (a shopper
buys in a second browser context), then pack and ship two orders with tracking, refund one
line, export one customer's data and erase another's, all through the console; screenshots at
1280 and 375 px in test-artifacts/. The two halves are the plain functions of
``test_operators_day_catalog`` and ``test_operators_day_fulfil``, which also run alone."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from dropline.admin.service import create_admin_user
from dropline.catalog.models import Product
from dropline.customers.models import Customer
from dropline.customers.service import register_customer
from dropline.media.models import MediaAsset
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import OrderStage
from dropline.privacy.service import pseudonym
from tests.builders import CONSOLE_PASSWORD, PASSWORD, make_location
from tests.e2e.test_operators_day_catalog import (
    OPERATOR,
    SHOPPER,
    operator_creates_product_and_schedules_drop,
    screenshots,
    shopper_buys_on_the_live_drop_page,
)
from tests.e2e.test_operators_day_fulfil import (
    given_a_days_drop_orders,
    operator_packs_ships_refunds_exports_and_erases,
)


def test_an_operators_day(browser, page, live_server, db, clock, settings):
    make_location(db, code="central")
    with db.transaction() as session:
        create_admin_user(session, clock=clock, email=OPERATOR, password=CONSOLE_PASSWORD)
        register_customer(session, clock=clock, email=SHOPPER, password=PASSWORD)

    day = operator_creates_product_and_schedules_drop(page, live_server, db, clock)
    page.goto(f"{live_server.url}/admin/drops")
    live = page.locator(f'[data-live="/admin/drops/{day.drop_id}/live.json"]')
    expect(live.locator('[data-field="sold"]')).to_have_text("0")
    shopper_buys_on_the_live_drop_page(browser, live_server.url, day)
    expect(live.locator('[data-field="sold"]')).to_have_text("1", timeout=20_000)
    screenshots(page, "day-live")

    orders = given_a_days_drop_orders(db, clock, settings, with_location=False)
    operator_packs_ships_refunds_exports_and_erases(page, live_server, orders, email=OPERATOR,
                                                    password=CONSOLE_PASSWORD)

    with db.transaction() as session:
        product = session.get(Product, day.product_id)
        image = session.scalars(select(MediaAsset)).one()
        for order_id in orders.ship:
            assert session.get(Order, order_id).stage is OrderStage.shipped
        refunded = session.get(Order, orders.refund)
        line = session.get(OrderLine, orders.refund_line)
        erased = session.get(Customer, orders.erase_customer)
        bought = session.scalars(select(Order).where(Order.email == SHOPPER)).all()
    assert (product.name, image.owner_id) == ("Smoked Fig Candle", day.product_id)
    assert [o.status for o in bought] == [OrderStatus.paid]
    assert refunded.status is OrderStatus.partially_refunded
    assert refunded.refunded_amount == line.line_total_amount - line.discount_amount - 200
    assert erased.erased_at is not None and erased.email == pseudonym(erased.id)
