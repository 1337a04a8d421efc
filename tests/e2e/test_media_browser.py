"""Product media in real Chromium: an image uploaded through the admin API appears on the
product page in the best format the browser takes, with no layout shift; at 375 px the
product page fits the screen and its first buy button is in view; an admitted shopper buys in
place from the drop page; a member with a paid delivery window is charged exactly the total
checkout showed, through the page's script, and lands on the confirmation."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from dropline.adapters.payments import LocalCardProvider
from dropline.catalog.models import Product, Variant
from dropline.customers.service import register_customer
from dropline.memberships.rules import MemberPriceKind
from dropline.orders.models import Order
from dropline.payments.models import Payment
from tests.builders import PASSWORD, api_token, make_location, make_product
from tests.drops.builders import make_drop
from tests.e2e.conftest import ARTIFACTS
from tests.fulfilment.builders import make_item, make_network, make_windows
from tests.media.builders import image_bytes
from tests.memberships.support import join, make_tier

PHONE = {"width": 375, "height": 812}


def _upload(url: str, headers: dict[str, str], slug: str) -> dict:
    response = httpx.post(f"{url}/api/v1/admin/media/product/{slug}", headers=headers,
                          files={"file": ("photo.jpg", image_bytes(1200, 900, "JPEG"),
                                          "image/jpeg")},
                          data={"alt": "Ember Oud bottle on slate"}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_uploaded_image_shows_on_the_product_page_and_the_page_fits_a_phone(
        page, live_server, db, clock):
    make_location(db)
    make_product(db, clock, name="Ember Oud Extrait de Parfum Limited Batch Edition",
                 price=8550, stock=4)
    slug = "ember-oud-extrait-de-parfum-limited-batch-edition"
    _upload(live_server.url, api_token(db, clock, "media:write"), slug)

    page.goto(f"{live_server.url}/products/{slug}")
    image = page.get_by_alt_text("Ember Oud bottle on slate")
    image.wait_for()
    page.wait_for_load_state("load")
    loaded = image.evaluate("img => [img.complete, img.naturalWidth, img.currentSrc]")
    box = image.bounding_box()

    assert loaded[0] and loaded[1] > 0
    assert loaded[2].endswith((".avif", ".webp"))  # a modern format chosen from <source>
    # Width and height attributes reserve the box before the bytes arrive: 4:3.
    assert abs(box["width"] / box["height"] - 4 / 3) < 0.02

    page.set_viewport_size(PHONE)
    page.reload()
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    button = page.get_by_role("button", name="Add 50 ml to cart").first
    spot = button.bounding_box()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "product-375.png"))

    assert width <= 375
    assert spot["x"] >= 0 and spot["x"] + spot["width"] <= 375
    assert spot["y"] >= 0 and spot["y"] + spot["height"] <= PHONE["height"]


def test_an_admitted_shopper_buys_in_place_from_the_drop_page(page, live_server, db, clock):
    world = make_drop(db, clock, cap=5, queue=True)
    with db.transaction() as session:
        register_customer(session, clock=clock, email="ada@example.com", password=PASSWORD)
    page.goto(f"{live_server.url}/sign-in?next=/drops/{world.drop_id}")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/drops/{world.drop_id}")

    page.get_by_role("button", name="Join the waiting room").click()
    page.wait_for_url(f"**/drops/{world.drop_id}/me*")
    # Back on the drop page, the admitted shopper is offered "Buy now" where the join was.
    page.goto(f"{live_server.url}/drops/{world.drop_id}")
    page.get_by_role("link", name="Buy now").click()
    page.get_by_role("heading", name="Buy now").wait_for()
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 Fournier St")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("E1 6QE")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Pay now").click()
    page.wait_for_url("**/orders/*")

    assert page.get_by_text("Thank you: your order is placed.").is_visible()


def test_a_member_with_a_paid_delivery_window_is_charged_the_total_checkout_showed(
        page, live_server, db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, price=4000)
    window = make_windows(db)[-1]
    with db.transaction() as session:
        customer = register_customer(session, clock=clock, email="ada@example.com",
                                     password=PASSWORD)
        slug = session.get(Product, session.get(Variant, variant).product_id).slug
    tier = make_tier(db, clock, member_price_kind=MemberPriceKind.percent, member_price_value=10)
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=customer.id, tier_id=tier)
    page.goto(f"{live_server.url}/sign-in?next=/products/{slug}")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/products/{slug}")
    # The member's own price is written beside the shelf price on the (shared) product page.
    page.get_by_text("member price: £36.00").wait_for()
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add 50 ml to cart").click()
    page.wait_for_url("**/cart")

    page.goto(f"{live_server.url}/checkout")
    page.get_by_label("Delivery postcode").fill("E8 3PN")
    page.get_by_role("button", name="Update delivery, code and total").click()
    page.locator(f'input[name="delivery"][value="{window}"]').check()
    page.get_by_role("button", name="Update delivery, code and total").click()
    page.locator(f'input[name="delivery"][value="{window}"]:checked').wait_for()
    shown = int(page.locator("dd[data-total]").get_attribute("data-total"))
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 Dalston Lane")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").last.fill("E8 3PN")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("CVC").fill("123")
    button = page.get_by_role("button", name=re.compile(r"^Place order and pay £"))
    assert button.inner_text() == f"Place order and pay £{shown // 100}.{shown % 100:02d}"
    button.click()  # the page's script sends it (outbox), then shows the confirmation
    page.wait_for_url(re.compile(r".*/orders/\d+\?placed=1$"))

    order_id = int(re.search(r"/orders/(\d+)", page.url).group(1))
    with db.transaction() as session:
        order = session.get(Order, order_id)
        charged = session.scalar(select(Payment.amount).where(Payment.order_id == order_id))
    assert shown > 7200  # 2 x 40.00 less 10 %, plus the window's price
    assert order.total_amount == charged == shown
    assert page.get_by_text("Thank you: your order is placed.").is_visible()
    assert page.get_by_text("local hub, in your window").is_visible()
