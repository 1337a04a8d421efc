"""The operator's day in Chromium, first half: from the console, create a product with an
image, schedule a drop with a story; a shopper in a second browser buys on the live drop
page, and the console's live panel counts the sale. Screenshots at 1280 and 375 px go to
test-artifacts/operators-day-<step>-<width>.png.

``operator_creates_product_and_schedules_drop`` is a plain function so the whole day (this
half, then packing, refunds and customer data) can be driven from one test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from dropline.admin.service import create_admin_user
from dropline.catalog.models import Product
from dropline.customers.service import register_customer
from dropline.drops.models import Drop
from dropline.media.models import MediaAsset
from dropline.orders.models import Order, OrderStatus
from tests.builders import CONSOLE_PASSWORD, PASSWORD, make_location
from tests.e2e.conftest import ARTIFACTS
from tests.media.builders import image_bytes

OPERATOR = "owner@brand.example"
SHOPPER = "first-buyer@example.com"
WIDTHS = (1280, 375)


@dataclass(frozen=True)
class DayOne:
    product_id: int
    drop_id: int
    drop_slug: str


def screenshots(page: Any, step: str) -> None:
    """The page as it stands, at each width (the viewport is put back afterwards)."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"operators-day-{step}-{width}.png"),
                        full_page=True)
    page.set_viewport_size(size)


def sign_in_operator(page: Any, url: str) -> None:
    page.goto(f"{url}/admin/login")
    page.fill("#email", OPERATOR)
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/admin")


def operator_creates_product_and_schedules_drop(page: Any, live_server: Any, db: Any,
                                                clock: Any) -> DayOne:
    """Signs in as the shop's operator and, with the console's forms only: creates a product
    with its first variant, uploads its image, and schedules a drop of it (open now, with a
    story). Returns the ids the rest of the day needs."""
    url = live_server.url
    sign_in_operator(page, url)

    page.get_by_role("link", name="Products", exact=True).click()
    page.get_by_role("link", name="New product").click()
    page.fill("#f-name", "Smoked Fig Candle")
    page.fill("#f-family", "candles")
    page.select_option("#f-status", "active")
    page.fill("#f-description", "Hand-poured in Hackney.")
    page.fill("#f-sku", "CANDLE-SMOKED-FIG")
    page.fill("#f-variant_name", "220 g")
    page.fill("#f-price", "28.50")
    page.fill("#f-weight_grams", "400")
    page.get_by_role("button", name="Create product").click()
    page.wait_for_url(re.compile(r"/admin/products/\d+\?done="))
    expect(page.get_by_role("status")).to_contain_text("Product created")
    product_id = int(re.search(r"/admin/products/(\d+)", page.url)[1])

    page.set_input_files("#media-file", files=[{
        "name": "candle.png", "mimeType": "image/png", "buffer": image_bytes(900, 600)}])
    page.fill("#media-alt", "A smoked glass candle on a fig branch")
    page.get_by_role("button", name="Upload image").click()
    page.wait_for_url(re.compile(r"\?done=Image"))
    expect(page.locator(".media-list img")).to_have_count(1)
    screenshots(page, "product")

    page.get_by_role("link", name="Drops", exact=True).click()
    page.get_by_role("link", name="New drop").click()
    page.fill("#f-name", "Smoked Fig at Dusk")
    page.get_by_label(re.compile(r"Smoked Fig Candle · 220 g")).check()
    page.fill("#f-cap", "5")
    page.fill("#f-per_person_limit", "1")
    page.select_option("#f-location", "central")
    # The shared clock stands at 10:00 in London: the drop opens an hour ago.
    page.fill("#f-starts_at", "2026-03-02T09:00")
    page.fill("#f-ends_at", "2026-03-04T21:00")
    page.fill("#f-early_access_minutes", "0")
    page.uncheck("#f-queue_enabled")
    page.fill("#f-story", "## Smoke and fig\n\nPoured at *dusk*, five of them only.")
    page.get_by_role("button", name="Schedule the drop").click()
    page.wait_for_url(re.compile(r"/admin/drops/\d+/edit\?done="))
    drop_id = int(re.search(r"/admin/drops/(\d+)/edit", page.url)[1])
    screenshots(page, "drop-edit")
    with db.transaction() as session:
        slug = session.get(Drop, drop_id).slug
    return DayOne(product_id, drop_id, slug)


def shopper_buys_on_the_live_drop_page(browser: Any, url: str, drop: DayOne) -> None:
    """A shopper in another browser (no JavaScript: the hosted card page) buys one unit."""
    context = browser.new_context(java_script_enabled=False)
    shopper = context.new_page()
    try:
        shopper.goto(f"{url}/drops/{drop.drop_slug}")
        expect(shopper.get_by_role("heading", name="Smoke and fig")).to_be_visible()
        expect(shopper.get_by_text("five of them only")).to_be_visible()
        screenshots(shopper, "live-drop-page")
        shopper.goto(f"{url}/sign-in?next=/drops/{drop.drop_id}/me")
        shopper.get_by_label("Email").fill(SHOPPER)
        shopper.get_by_label("Password").fill(PASSWORD)
        shopper.get_by_role("button", name="Sign in").click()
        shopper.wait_for_url(f"**/drops/{drop.drop_id}/me")
        shopper.get_by_label("Full name").fill("Ada Lovelace")
        shopper.get_by_label("Address", exact=True).fill("1 Fournier St")
        shopper.get_by_label("Town or city").fill("London")
        shopper.get_by_label("Postcode", exact=True).fill("E1 6QE")
        shopper.get_by_role("button", name="Pay now").click()
        shopper.get_by_role("heading", name="Pay by card").wait_for()
        shopper.get_by_label("Card number").fill("4242 4242 4242 4242")
        shopper.get_by_label("Expiry month").fill("12")
        shopper.get_by_label("Expiry year").fill("2030")
        shopper.get_by_label("CVC").fill("123")
        shopper.get_by_role("button", name="Continue to").click()
        shopper.get_by_role("button", name="Pay now").click()
        shopper.wait_for_url("**/orders/*")
        expect(shopper.get_by_text("Thank you: your order is placed.")).to_be_visible()
    finally:
        context.close()


def test_an_operator_creates_a_product_schedules_a_drop_and_watches_it_sell(
        browser, page, live_server, db, clock):
    make_location(db, code="central")
    with db.transaction() as session:
        create_admin_user(session, clock=clock, email=OPERATOR, password=CONSOLE_PASSWORD)
        register_customer(session, clock=clock, email=SHOPPER, password=PASSWORD)

    day = operator_creates_product_and_schedules_drop(page, live_server, db, clock)

    page.goto(f"{live_server.url}/admin/drops")  # the live panel polls while the drop is open
    live = page.locator(f'[data-live="/admin/drops/{day.drop_id}/live.json"]')
    expect(live.locator('[data-field="sold"]')).to_have_text("0")
    shopper_buys_on_the_live_drop_page(browser, live_server.url, day)
    # The panel's poll (every 5 s) brings the sale in without a reload.
    expect(live.locator('[data-field="sold"]')).to_have_text("1", timeout=20_000)
    screenshots(page, "console-live")

    with db.transaction() as session:
        product = session.get(Product, day.product_id)
        image = session.scalars(select(MediaAsset)).one()
        orders = session.scalars(select(Order)).all()
    assert (product.name, product.status.value) == ("Smoked Fig Candle", "active")
    assert (image.owner_kind.value, image.owner_id) == ("product", day.product_id)
    assert [o.status for o in orders] == [OrderStatus.paid]
