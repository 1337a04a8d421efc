"""A drop bought in the browser with a discount code and a hub delivery window (JavaScript on,
the local provider's card form), on a phone-sized screen: the windows for the postcode are
listed, the picked one is booked and priced, the code taken off."""

from __future__ import annotations

from sqlalchemy import select

from dropline.catalog.service import set_stock
from dropline.customers.service import register_customer
from dropline.fulfilment.models import WindowBooking
from dropline.orders.models import Order, OrderStatus
from tests.builders import PASSWORD
from tests.discounts.builders import make_code
from tests.drops.builders import make_drop
from tests.fulfilment.builders import make_network, make_windows


def test_a_drop_is_bought_with_a_code_and_a_delivery_window_on_a_phone(
        browser, live_server, db, clock):
    make_network(db, clock)
    window = make_windows(db)[-1]
    world = make_drop(db, clock, cap=3, limit=1, price=4200, with_location=False)
    make_code(db, clock, code="FIGNIGHT", percent=10, drop_ids=[world.drop_id])
    with db.transaction() as session:
        set_stock(session, clock=clock, location_code="hub-hackney",
                  variant_id=world.variant_ids[0], on_hand=3, actor="test")
        register_customer(session, clock=clock, email="ada@example.com", password=PASSWORD)
    context = browser.new_context(viewport={"width": 375, "height": 740}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/sign-in?next=/drops/{world.drop_id}/me")
        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**/drops/{world.drop_id}/me")

        page.get_by_label("Area for delivery windows").fill("E8 3PN")
        page.get_by_role("button", name="Show delivery windows").click()
        page.get_by_role("radio", name="Delivery window").first.wait_for()
        page.locator(f'input[name="window"][value="{window}"]').check()
        page.get_by_label("Discount code").fill("fignight")
        page.get_by_label("Full name").fill("Ada Lovelace")
        page.get_by_label("Address", exact=True).fill("1 Dalston Lane")
        page.get_by_label("Town or city").fill("London")
        assert page.get_by_label("Postcode", exact=True).input_value() == "E8 3PN"
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_label("Expiry month").fill("12")
        page.get_by_label("Expiry year").fill("2030")
        page.get_by_label("CVC").fill("123")
        width = page.evaluate("document.documentElement.scrollWidth")
        page.get_by_role("button", name="Pay now").click()
        page.wait_for_url("**/orders/*")

        assert page.get_by_text("Thank you: your order is placed.").is_visible()
        assert page.get_by_text("Discount code FIGNIGHT").is_visible()
        assert width <= 375  # nothing wider than the phone
    finally:
        context.close()
    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        # 42.00 less 10 %, the window's 3.95 on top
        assert (order.status, order.fulfilment_path, order.discount_amount,
                order.total_amount) == (OrderStatus.paid, "hub-window", 420, 4175)
        assert session.scalar(select(WindowBooking.window_id).where(
            WindowBooking.live_order_id == order.id)) == window
