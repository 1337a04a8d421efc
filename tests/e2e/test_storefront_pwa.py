"""The storefront as a PWA in real Chromium: buy and see the order; the drop page in the
waiting room and after sell-out; install criteria; and offline-first checkout (pending while
offline, exactly one order once online, a replay creates no second order, sold out meanwhile
is told clearly and charges nothing). Screenshots of each main page go to test-artifacts/."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from dropline.catalog.models import ConditionGrade
from dropline.catalog.service import set_stock
from dropline.drops import service as drops
from dropline.drops.models import HoldSource
from tests.accounts.support import mails_to
from tests.builders import PASSWORD, make_location, make_product
from tests.drops.builders import make_drop, make_shopper
from tests.e2e.conftest import ARTIFACTS
from tests.storefront.builders import counts


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"storefront-{name}.png"), full_page=True)


def sign_up(page, url: str, outbox: Path, next_path: str = "/account") -> str:
    """Signs up in the form, then opens the emailed link and confirms: signed in at
    ``next_path``."""
    email = f"shopper-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(f"{url}/sign-up?next={next_path}")
    page.get_by_label("Name").fill("Ada")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    [mail] = mails_to(outbox, email)
    link = re.search(r"http\S+/sign-up/confirm\S+", mail.get_content()).group(0)
    page.goto(url + link[link.index("/sign-up/"):])
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(f"{url}{next_path}")
    return email


def fill_checkout(page) -> None:
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 Fournier St")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").last.fill("E1 6QE")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("CVC").fill("123")


def wait_for_service_worker(page) -> None:
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")


def test_a_shopper_browses_buys_and_sees_the_order(page, live_server, db, clock, outbox):
    make_location(db)
    make_product(db, clock, name="Neroli Tide", price=7400, stock=4)
    make_product(db, clock, name="Atomiser Stone", price=2900, family="diffusers",
                 grade=ConditionGrade.refurbished_b, disclosure="Hairline glaze crack, sealed.")
    sign_up(page, live_server.url, outbox, next_path="/")
    shot(page, "home")

    page.get_by_text("Atomiser Stone").click()
    page.wait_for_url("**/products/atomiser-stone")
    page.get_by_text("Hairline glaze crack, sealed.").wait_for()
    shot(page, "product")
    page.get_by_role("button", name="Add 50 ml to cart").click()
    assert page.url.endswith("/cart")
    page.wait_for_function("document.querySelector('[data-me=cart]').textContent === '(1)'")
    shot(page, "cart")
    page.get_by_role("link", name="Check out").click()
    fill_checkout(page)
    shot(page, "checkout")
    page.get_by_role("button", name="Place order").click()

    # The script's checkout ends where the form's does: on the order's confirmation page.
    page.wait_for_url(re.compile(r".*/orders/\d+\?placed=1$"))
    assert page.get_by_text("Thank you: your order is placed.").is_visible()
    assert page.get_by_role("heading", level=1, name="Order").is_visible()
    assert page.locator("[data-status=paid]").is_visible()
    assert page.get_by_text("Hairline glaze crack, sealed.").is_visible()
    shot(page, "order")
    page.get_by_role("link", name="All my orders").click()
    assert page.get_by_role("link", name="Open the membership portal").is_visible()
    shot(page, "account")
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}


def test_the_drop_page_in_the_waiting_room_and_after_sell_out(page, live_server, db, clock,
                                                              outbox):
    world = make_drop(db, clock, cap=1, queue=True, starts_in=30, early_access_minutes=10)
    sign_up(page, live_server.url, outbox)

    page.goto(f"{live_server.url}/drops/{world.drop_id}")
    assert page.locator("#countdown").is_visible()
    # The viewer's own early-access state: this shopper is not a member.
    early = page.locator('[data-me="early-access"]')
    early.get_by_role("link", name="become a member").wait_for()
    assert early.inner_text() == "Your account has none: become a member to get it."
    page.get_by_role("button", name="Join the waiting room").click()
    assert page.get_by_text("You are number 1 in the waiting room").is_visible()
    page.goto(f"{live_server.url}/drops/{world.drop_id}")
    page.wait_for_function(
        "document.querySelector('[data-me=queue]').textContent.includes('number 1')")
    shot(page, "drop-waiting-room")

    clock.advance(minutes=31)
    other = make_shopper(db, clock)
    with db.transaction() as session:
        drops.create_hold(session, clock=clock, drop=drops.get_drop(session, world.drop_id),
                          customer_id=other.customer_id,
                          lines=[drops.HoldLine(world.variant_ids[0], 1)],
                          source=HoldSource.direct)
    page.reload()  # a plain visit may reuse the browser's copy for its max-age (5 s)

    assert page.get_by_text("Sold out.").is_visible()
    assert page.get_by_role("button", name="Join the waitlist").is_visible()
    shot(page, "drop-sold-out")
    page.get_by_role("button", name="Join the waitlist").click()
    assert page.get_by_text("Waitlist: waiting").is_visible()


def test_install_criteria_manifest_and_a_controlling_service_worker(page, live_server, db):
    page.goto(live_server.url + "/")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    manifest = page.request.get(live_server.url + href)

    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = manifest.json()
    assert body["display"] == "standalone" and body["start_url"].startswith("/")
    assert body["name"] and body["theme_color"].startswith("#")
    sizes = {icon["sizes"] for icon in body["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in body["icons"]:
        png = page.request.get(live_server.url + icon["src"])
        assert png.ok and png.body()[:8] == b"\x89PNG\r\n\x1a\n"
    wait_for_service_worker(page)
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL").endswith("/sw.js")
    page.context.set_offline(True)
    page.goto(live_server.url + "/products/never-seen")  # not cached: the offline page
    assert page.get_by_role("heading", name="You are offline").is_visible()
    shot(page, "offline")
    page.context.set_offline(False)


def _offline_checkout(page, live_server, db, clock, outbox) -> int:
    make_location(db)
    _, variant_id = make_product(db, clock, name="Neroli Tide", price=7400, stock=1)
    sign_up(page, live_server.url, outbox, next_path="/products/neroli-tide")
    page.get_by_role("button", name="Add 50 ml to cart").click()
    page.goto(live_server.url + "/checkout")
    wait_for_service_worker(page)
    fill_checkout(page)
    page.context.set_offline(True)
    page.get_by_role("button", name="Place order").click()
    pending = page.locator("#outbox-list li[data-state=pending]")
    pending.wait_for()
    assert "pending" in pending.inner_text()
    assert page.locator("#net").is_visible()
    shot(page, "checkout-pending-offline")
    assert counts(db)["orders"] == 0
    # The outbox's store (IndexedDB) holds what to buy and the key: no card, no reference.
    stored = json.dumps(page.evaluate(
        "import('/static/pwa/outbox.js').then(m => m.outbox.pending())"))
    assert "4242" not in stored and "cvc" not in stored and "payment_method" not in stored
    assert '"payment": true' in stored and "shipping_address" in stored
    return variant_id


def test_an_offline_checkout_is_sent_once_online_and_a_replay_makes_no_second_order(
        page, live_server, db, clock, outbox):
    _offline_checkout(page, live_server, db, clock, outbox)
    queued = page.locator("#outbox-list li[data-state=pending]")
    key = queued.get_attribute("data-idempotency-key")
    body = json.loads(queued.get_attribute("data-body"))  # as stored: no payment method in it

    page.context.set_offline(False)
    # Sent on reconnect, the shopper lands on the confirmation, which says when it was sent.
    page.wait_for_url(re.compile(r".*/orders/\d+\?placed=1$"))
    note = page.locator("#sent-note")
    note.wait_for()
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}
    assert re.fullmatch(r"Placed on this device at \d\d:\d\d while you were offline, "
                        r"sent at \d\d:\d\d\.", note.inner_text())
    shot(page, "checkout-sent")

    replay = page.evaluate("""([key, body]) => fetch('/api/v1/checkout', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'Idempotency-Key': key},
        body: JSON.stringify({...body, payment_method: 'pm_card_visa'})}).then(
        async r => ({status: r.status}))""", [key, body])
    assert replay["status"] == 422  # same key, another card: refused, not a second order
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}
    assert page.evaluate("import('/static/pwa/outbox.js').then(m => m.outbox.pending())") == []


def test_an_offline_checkout_that_sold_out_meanwhile_says_so_and_charges_nothing(
        page, live_server, db, clock, outbox):
    variant_id = _offline_checkout(page, live_server, db, clock, outbox)
    with db.transaction() as session:  # the last unit sells elsewhere while we are offline
        set_stock(session, clock=clock, location_code="central", variant_id=variant_id,
                  on_hand=0, actor="pop-up till")

    page.context.set_offline(False)
    failed = page.locator("#outbox-list li[data-state=failed]")
    failed.wait_for()

    assert "Sold out while you were offline" in failed.inner_text()
    assert "nothing was charged" in failed.inner_text()
    shot(page, "checkout-sold-out")
    assert counts(db) == {"orders": 0, "payments": 0, "charges": 0}
    # The answer is kept until dismissed: another page still says what came of the order.
    page.goto(live_server.url + "/")
    kept = page.locator("#outbox-list li[data-state=failed]")
    kept.wait_for()
    assert "Sold out while you were offline" in kept.inner_text()
    kept.get_by_role("button", name="Dismiss").click()
    page.reload()
    page.wait_for_load_state("load")
    assert page.evaluate(
        "import('/static/pwa/outbox.js').then(m => m.outbox.answers())") == []
    assert page.locator("#outbox").is_hidden()


def test_an_order_queued_offline_stays_in_view_after_a_reload_and_is_sent_once_confirmed(
        page, live_server, db, clock, outbox):
    _offline_checkout(page, live_server, db, clock, outbox)

    page.reload()  # still offline: the checkout is not cached, the offline page answers
    page.get_by_role("heading", name="You are offline").wait_for()
    kept = page.locator("#outbox-list li[data-state=pending]")
    kept.wait_for()
    assert re.fullmatch(r"Order of 1 item, placed at \d\d:\d\d while offline: pending\. It is "
                        r"kept on this device and sent as soon as you are online\.",
                        kept.inner_text())
    shot(page, "offline-queued")

    page.context.set_offline(False)  # the card is not kept, so it waits for the shopper
    waiting = page.locator("#outbox-list li[data-state=awaiting-payment]")
    waiting.wait_for()
    assert counts(db)["orders"] == 0
    waiting.get_by_role("link", name="Confirm payment at checkout").click()
    page.wait_for_url("**/checkout")
    fill_checkout(page)
    page.get_by_role("button", name="Confirm payment").click()

    page.wait_for_url(re.compile(r".*/orders/\d+\?placed=1$"))
    page.locator("#sent-note").wait_for()
    assert "while you were offline" in page.locator("#sent-note").inner_text()
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}
    assert page.evaluate("import('/static/pwa/outbox.js').then(m => m.outbox.pending())") == []
