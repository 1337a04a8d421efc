"""The storefront's pages as plain forms (no JavaScript): browse, buy, see the order; the drop
page through its states; and the server-side promise of an offline checkout."""

from __future__ import annotations

import re
import uuid

from dropline.catalog.models import ConditionGrade
from dropline.catalog.service import set_stock
from dropline.drops import service as drops
from dropline.drops.models import HoldSource
from tests.builders import checkout_body, make_location, make_product, sign_up, sign_up_token
from tests.drops.builders import make_drop
from tests.storefront.builders import CHECKOUT_FORM, counts
from tests.web.support import assert_problem


def _form_key(html: str) -> str:
    match = re.search(r'name="key" value="([^"]+)"', html)
    assert match, "the form carries a key"
    return match.group(1)


def test_a_shopper_buys_through_plain_forms_and_a_resubmit_is_the_same_order(client, db, clock):
    make_location(db)
    _, variant_id = make_product(db, clock, name="Atomiser Stone", price=2900, stock=3,
                                 grade=ConditionGrade.refurbished_b,
                                 disclosure="Hairline glaze crack, sealed.")
    product = client.get("/products/atomiser-stone")
    assert "Hairline glaze crack, sealed." in product.text
    sign_up(client)

    added = client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 2},
                        follow_redirects=False)
    cart = client.get("/cart")
    checkout = client.get("/checkout")
    key = _form_key(checkout.text)
    placed = client.post("/checkout", data={**CHECKOUT_FORM, "key": key},
                         follow_redirects=False)
    again = client.post("/checkout", data={**CHECKOUT_FORM, "key": key},
                        follow_redirects=False)

    assert added.status_code == 303 and added.headers["location"] == "/cart"
    assert "Atomiser Stone" in cart.text and "£58.00" in cart.text
    assert "Hairline glaze crack, sealed." in checkout.text
    assert placed.status_code == 303
    order_path = placed.headers["location"].split("?")[0]
    assert again.status_code == 303 and again.headers["location"] == order_path
    order = client.get(order_path)
    assert order.status_code == 200 and 'data-status="paid"' in order.text
    assert order.headers["Cache-Control"] == "private, no-store"
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}


def test_checkout_needs_a_sign_in_and_comes_back_after_it(client, db, clock):
    page = client.get("/checkout", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/sign-in?next=/checkout"
    email = f"s-{uuid.uuid4().hex[:6]}@example.com"
    made = client.post("/sign-up", data={"email": email, "password": "long enough pw",
                                         "next": "/checkout"}, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/sign-up/sent"
    confirmed = client.post("/sign-up/confirm", data={
        "token": sign_up_token(client, email), "next": "/checkout"}, follow_redirects=False)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/checkout"
    evil = client.post("/sign-in", data={"email": email, "password": "long enough pw",
                                         "next": "//evil.example/"}, follow_redirects=False)
    assert evil.status_code == 303 and evil.headers["location"] == "/account"
    wrong = client.post("/sign-in", data={"email": email, "password": "not the password"})
    assert wrong.status_code == 401 and "role=\"alert\"" in wrong.text


def test_a_refused_form_checkout_keeps_the_address_and_charges_nothing(client, db, clock):
    make_location(db)
    _, variant_id = make_product(db, clock, stock=1)
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})
    key = _form_key(client.get("/checkout").text)
    with db.transaction() as session:
        set_stock(session, clock=clock, location_code="central", variant_id=variant_id,
                  on_hand=0, actor="test")

    refused = client.post("/checkout", data={**CHECKOUT_FORM, "key": key})

    assert refused.status_code == 409 and "Ada Lovelace" in refused.text
    assert counts(db) == {"orders": 0, "payments": 0, "charges": 0}


def test_a_replayed_offline_checkout_that_sold_out_meanwhile_is_refused_and_not_charged(
        client, db, clock):
    """What the outbox relies on: the API refuses before any charge, and a replay of the same
    key returns the same refusal instead of trying again."""
    make_location(db)
    _, variant_id = make_product(db, clock, stock=1)
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})
    cart_id = client.cookies.get("dl_cart")
    with db.transaction() as session:
        set_stock(session, clock=clock, location_code="central", variant_id=variant_id,
                  on_hand=0, actor="test")
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = client.post("/api/v1/checkout", json=checkout_body(cart_id), headers=headers)
    replay = client.post("/api/v1/checkout", json=checkout_body(cart_id), headers=headers)

    assert assert_problem(first, 409)["type"].endswith("/out-of-stock")
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert counts(db) == {"orders": 0, "payments": 0, "charges": 0}


def test_the_drop_page_shows_the_waiting_room_then_the_waitlist_once_sold_out(
        client, db, clock):
    world = make_drop(db, clock, cap=1, queue=True, starts_in=30, early_access_minutes=10)
    before = client.get(f"/drops/{world.drop_id}")
    assert before.status_code == 200 and "Join the waiting room" in before.text
    assert "early access up to 10 minutes" in before.text
    assert before.headers["Cache-Control"].startswith("public, max-age=5")
    assert f"drop-{world.drop_id}" in before.headers["Surrogate-Key"].split()

    sign_up(client)
    joined = client.post(f"/drops/{world.drop_id}/queue", follow_redirects=False)
    mine = client.get(joined.headers["location"])
    assert joined.status_code == 303 and "You are number 1" in mine.text
    assert client.get(f"/api/v1/me/summary?drop={world.drop_id}").json()["drop"]["queue"][
        "position"] == 1

    clock.advance(minutes=31)
    with db.transaction() as session:  # the last unit goes to someone else
        from tests.drops.builders import make_shopper

        other = make_shopper(db, clock)
        drop = drops.get_drop(session, world.drop_id)
        drops.create_hold(session, clock=clock, drop=drop, customer_id=other.customer_id,
                          lines=[drops.HoldLine(world.variant_ids[0], 1)],
                          source=HoldSource.direct)
    sold_out = client.get(f"/drops/{world.drop_id}")
    assert "Sold out" in sold_out.text and 'id="waitlist-form"' in sold_out.text
    waited = client.post(f"/drops/{world.drop_id}/waitlist",
                         data={"variant_id": world.variant_ids[0], "quantity": 1},
                         follow_redirects=False)
    assert waited.status_code == 303
    assert "Waitlist: waiting" in client.get(waited.headers["location"]).text


def test_an_admitted_shopper_buys_from_the_drop_with_a_plain_form_once(client, db, clock):
    world = make_drop(db, clock, cap=5, queue=True, starts_in=0)
    sign_up(client)
    joined = client.post(f"/drops/{world.drop_id}/queue", follow_redirects=False)
    mine = client.get(joined.headers["location"])
    assert "It's your turn" in mine.text and "Pay now" in mine.text
    form = {**CHECKOUT_FORM, "key": _form_key(mine.text), "variant_id": world.variant_ids[0],
            "quantity": 2}

    bought = client.post(f"/drops/{world.drop_id}/buy", data=form, follow_redirects=False)
    again = client.post(f"/drops/{world.drop_id}/buy", data=form, follow_redirects=False)

    assert bought.status_code == 303 and bought.headers["location"].startswith("/orders/")
    assert again.headers["location"] == bought.headers["location"]
    assert 'data-status="paid"' in client.get(bought.headers["location"]).text
    assert counts(db) == {"orders": 1, "payments": 1, "charges": 1}
    assert client.get(f"/api/v1/me/summary?drop={world.drop_id}").json()["drop"][
        "remaining"] == 3
