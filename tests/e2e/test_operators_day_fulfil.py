"""An operator's day in Chromium, second half: given paid orders from a drop, the operator
packs and ships two of them with tracking, refunds one line (less a restocking fee), exports
one customer's data and erases another's, all through the console's pages; then the packer's
pages at 375 px. Screenshots at 1280 and 375 px go to test-artifacts/console-*.png.

``operator_packs_ships_refunds_exports_and_erases`` is a plain function taking the page, so
the whole day (the first half creates the product and the drop and sees it sell) can call it
after its own steps."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from dropline.admin.roles import Role
from dropline.catalog.service import set_stock
from dropline.customers.models import Customer
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import OrderStage
from dropline.privacy.service import pseudonym
from tests.admin.console_support import make_staff
from tests.builders import CONSOLE_PASSWORD
from tests.drops.builders import make_drop
from tests.e2e.conftest import ARTIFACTS
from tests.orders.lifecycle_builders import paid_order


@dataclass(frozen=True)
class DayOrders:
    ship: tuple[int, int]  # two orders to pack and ship
    refund: int  # an order of two lines, one to refund
    refund_line: int
    export_customer: int
    export_email: str
    erase_customer: int  # a customer whose only order was delivered long ago
    erase_email: str


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def _fits(page) -> bool:
    """Nothing wider than the phone's screen (no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth") <= \
        page.viewport_size["width"] + 1


def operator_packs_ships_refunds_exports_and_erases(page, live_server, orders: DayOrders,
                                                    *, email: str, password: str) -> None:
    base = live_server.url
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/admin/orders")
    if "/admin/login" in page.url:
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/admin/orders")
    assert page.locator("h1").inner_text() == "Orders"
    _shot(page, "orders")

    for order_id, tracking in zip(orders.ship, ("RM100000001GB", "RM100000002GB"), strict=True):
        page.goto(f"{base}/admin/orders/{order_id}")
        page.click("button:has-text('Mark packed')")
        page.wait_for_selector("p.flash:has-text('Packed')")
        page.fill("#tracking_number", tracking)
        page.click("button:has-text('Mark shipped')")
        page.wait_for_selector(f"code.tracking:has-text('{tracking}')")
        assert "shipped" in page.locator("h1").inner_text()
    _shot(page, "order-shipped")

    page.goto(f"{base}/admin/orders/{orders.refund}")
    page.select_option("#line_id", str(orders.refund_line))
    page.fill("#restocking_fee", "2.00")
    page.fill("#reason", "one bottle back, unopened")
    page.click("button:has-text('Refund')")
    page.wait_for_selector("p.flash:has-text('Refunded')")
    assert "partially-refunded" in page.locator("h1").inner_text()
    _shot(page, "order-refunded")

    page.goto(f"{base}/admin/customers/{orders.export_customer}")
    with page.expect_download() as download:
        page.click("a.export")
    exported = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert exported["customer"]["email"] == orders.export_email

    page.goto(f"{base}/admin/customers?q={orders.erase_email}")
    page.click(f"a[href='/admin/customers/{orders.erase_customer}']")
    page.click("button:has-text('Erase personal data')")
    assert orders.erase_email in page.locator("p.notice").inner_text()  # asked first
    _shot(page, "erase-confirm")
    page.click("form.confirm button:has-text('Erase personal data')")
    page.wait_for_selector("p.flash:has-text('Personal data erased')")
    assert page.locator("dd.email").inner_text() == pseudonym(orders.erase_customer)
    _shot(page, "customer-erased")

    # The packer's phone: the pick list with the find box, and an order found through it.
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{base}/admin/pick-list")
    assert _fits(page)
    _shot(page, "pick-list-375")
    page.fill("#find-q", f"#{orders.refund}")
    page.click("form.find button[type=submit]")
    page.wait_for_url(f"{base}/admin/orders/{orders.refund}")
    assert _fits(page)
    _shot(page, "order-375")
    page.goto(f"{base}/admin/orders")
    assert _fits(page)
    _shot(page, "orders-375")


def given_a_days_drop_orders(db, clock, settings, *, with_location: bool = True) -> DayOrders:
    """Paid orders from a drop: two to ship, one of two lines to refund one of, and a
    customer whose only order was delivered long ago (``with_location``: False when the shop
    already has its central location)."""
    world = make_drop(db, clock, cap=50, variants=2, price=3000, with_location=with_location)
    with db.transaction() as session:
        for variant_id in world.variant_ids:
            set_stock(session, clock=clock, location_code="central", variant_id=variant_id,
                      on_hand=50, actor="test")
    first, second = world.variant_ids
    ship = (paid_order(db, clock, settings, [(first, 1)], email="ivy@example.com"),
            paid_order(db, clock, settings, [(second, 1)], email="oak@example.com"))
    refund = paid_order(db, clock, settings, [(first, 1), (second, 1)],
                        email="elm@example.com")
    gone = paid_order(db, clock, settings, [(first, 1)], email="ash@example.com")
    with db.transaction() as session:
        refund_line = session.scalars(select(OrderLine.id).where(
            OrderLine.order_id == refund).order_by(OrderLine.id)).first()
        old = session.get(Order, gone)
        old.stage = OrderStage.delivered  # delivered long ago: nothing is on its way
        export_customer = session.get(Order, ship[0]).customer_id
        erase_customer = old.customer_id
    return DayOrders(ship=ship, refund=refund, refund_line=refund_line,
                     export_customer=export_customer, export_email="ivy@example.com",
                     erase_customer=erase_customer, erase_email="ash@example.com")


def test_an_operator_packs_ships_refunds_exports_and_erases(page, live_server, db, clock,
                                                            settings):
    orders = given_a_days_drop_orders(db, clock, settings)
    _, email = make_staff(db, clock, Role.owner)
    operator_packs_ships_refunds_exports_and_erases(page, live_server, orders, email=email,
                                                    password=CONSOLE_PASSWORD)
    with db.transaction() as session:
        for order_id in orders.ship:
            assert session.get(Order, order_id).stage is OrderStage.shipped
        refunded = session.get(Order, orders.refund)
        line = session.get(OrderLine, orders.refund_line)
        assert refunded.status is OrderStatus.partially_refunded
        assert refunded.refunded_amount == line.line_total_amount - line.discount_amount - 200
        erased = session.get(Customer, orders.erase_customer)
        assert erased.erased_at is not None and erased.email == pseudonym(erased.id)
    for name in ("orders", "order-shipped", "order-refunded", "customer-erased",
                 "pick-list-375", "order-375"):
        assert (ARTIFACTS / f"console-{name}.png").stat().st_size > 0
