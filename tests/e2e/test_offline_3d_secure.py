"""An offline checkout whose payment the bank wants confirmed (3-D Secure), in real Chromium on
the local provider (its 3-D Secure test card, 4000 0025 0000 3155): queued offline without card
data, sent on reconnect, answered ``payment-requires-action``; the page then sends the shopper
to confirm it with their bank, as the online checkout does, and exactly one order results, paid,
however often the same request is replayed."""

from __future__ import annotations

import json

from sqlalchemy import select

from dropline.orders.models import Order, OrderStatus
from tests.builders import make_location, make_product
from tests.e2e.test_storefront_pwa import shot, sign_up, wait_for_service_worker
from tests.storefront.builders import counts


def test_an_offline_order_needing_3d_secure_is_confirmed_with_the_bank_once_online(
        page, live_server, db, clock, outbox):
    make_location(db)
    make_product(db, clock, name="Neroli Tide", price=7400, stock=1)
    sign_up(page, live_server.url, outbox, next_path="/products/neroli-tide")
    page.get_by_role("button", name="Add 50 ml to cart").click()
    page.goto(live_server.url + "/checkout")
    wait_for_service_worker(page)
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 Fournier St")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").last.fill("E1 6QE")
    page.get_by_label("Card number").fill("4000 0025 0000 3155")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("CVC").fill("123")
    sent: list[tuple[str, str]] = []
    page.on("request", lambda r: sent.append((r.headers.get("idempotency-key", ""),
                                              r.post_data or ""))
            if r.url.endswith("/api/v1/checkout") else None)

    page.context.set_offline(True)
    page.get_by_role("button", name="Place order").click()
    page.locator("#outbox-list li[data-state=pending]").wait_for()
    stored = json.dumps(page.evaluate(
        "import('/static/pwa/outbox.js').then(m => m.outbox.pending())"))
    assert "3155" not in stored and "payment_method" not in stored and "cvc" not in stored
    page.context.set_offline(False)

    page.wait_for_url("**/orders/*/confirm-payment")
    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        assert order.status is OrderStatus.pending_payment
    assert page.get_by_text("Your bank asks you to confirm this payment").is_visible()
    shot(page, "checkout-3ds-confirm")
    assert page.evaluate("import('/static/pwa/outbox.js').then(m => m.outbox.pending())") == []
    page.get_by_role("button", name="Confirm with your bank").click()
    page.get_by_role("button", name="Confirm the payment").click()
    page.wait_for_url(f"**/orders/{order.id}?placed=1")

    assert page.get_by_text("Thank you: your order is placed.").is_visible()
    with db.transaction() as session:
        assert session.get(Order, order.id).status is OrderStatus.paid
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}
    # Another tab replaying the very request the outbox sent: the same order, no second one.
    [(key, body)] = sent
    replay = page.evaluate("""([key, body]) => fetch('/api/v1/checkout', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'Idempotency-Key': key}, body})
        .then(async r => ({status: r.status, body: await r.json()}))""", [key, body])
    assert replay["body"].get("order_id", replay["body"].get("id")) == order.id, replay
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}
