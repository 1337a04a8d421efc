"""The no-JavaScript card walk on the local provider keeps personal data out of URLs: what the
shopper typed before the hosted card page (name, address) comes back sealed with the app's key
(``web.payment_page.hosted_card_entry`` / ``returned_form``), so no Location header of the walk
names it, and the page still shows it typed. A sealed form older than ``RETURN_WITHIN``, or
altered, is not restored. (The walk in Chromium is ``tests/e2e/test_no_javascript_payments.py``;
on Stripe, ``tests/payments/test_stripe_no_javascript.py``.)"""

from __future__ import annotations

import re

from urllib.parse import parse_qs, unquote_plus, urlsplit

from dropline.customers.service import register_customer
from tests.builders import ADDRESS, PASSWORD, make_location, make_product, sign_up
from tests.drops.builders import make_drop
from tests.storefront.builders import CHECKOUT_FORM, counts

CARD = {"number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}
PERSONAL = ("Ada", "Lovelace", "Fournier", "E1 6QE", "E16QE", "London", "@example.com")


def assert_no_personal_data(location: str) -> None:
    """Nothing personal in clear: the sealed ``returned`` token is opaque (its random letters
    may spell "ada" by chance, so it is left out of the search; that it is sealed is asserted
    by the tests that tamper with it)."""
    clear = re.sub(r"returned=[^&]*", "returned=SEALED", location)
    decoded = unquote_plus(unquote_plus(clear))
    assert not [word for word in PERSONAL if word.lower() in decoded.lower()], location


def walk(client, path: str, form: dict[str, str]) -> tuple[list[str], str]:
    """Posts the form without a payment method, gives the card at the provider's page and
    comes back: every Location header on the way, and the page's final address."""
    locations = []
    sent = client.post(path, data={**form, "payment_method": ""}, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    locations.append(sent.headers["location"])
    card_page = client.get(sent.headers["location"])
    assert card_page.status_code == 200
    return_to = parse_qs(urlsplit(sent.headers["location"]).query)["return_to"][0]
    back = client.post("/pay/local/card", data={**CARD, "return_to": return_to},
                       follow_redirects=False)
    assert back.status_code == 303
    locations.append(back.headers["location"])
    return locations, back.headers["location"]


def test_the_checkout_form_comes_back_from_the_card_page_sealed_never_in_the_url(client, db,
                                                                                 clock):
    make_location(db)
    _, variant_id = make_product(db, clock, stock=1)
    sign_up(client, email="ada@example.com")
    client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})

    locations, back = walk(client, "/checkout", {**CHECKOUT_FORM, "key": "k1"})

    for location in locations:
        assert_no_personal_data(location)
    assert "returned=v1%3A" in back and "payment_method=pm_" in back
    page = client.get(back)
    assert page.status_code == 200
    for value in ("Ada Lovelace", "1 Fournier St", "London", "E1 6QE"):
        assert f'value="{value}"' in page.text, value
    assert "Card ending 4242, given to the payment provider." in page.text
    assert counts(db) == {"orders": 0, "payments": 0, "charges": 0}


def test_the_drop_purchase_form_comes_back_sealed_never_in_the_url(client, db, clock):
    world = make_drop(db, clock, cap=3, limit=1)
    with db.transaction() as session:
        register_customer(session, clock=clock, email="drop@example.com", password=PASSWORD)
    client.post("/sign-in", data={"email": "drop@example.com", "password": PASSWORD})

    locations, back = walk(client, f"/drops/{world.drop_id}/buy", {
        **ADDRESS, "variant_id": str(world.variant_ids[0]), "quantity": "1", "key": "k1"})

    for location in locations:
        assert_no_personal_data(location)
    page = client.get(back)
    assert page.status_code == 200
    assert 'value="1 Fournier St"' in page.text and 'value="Ada Lovelace"' in page.text


def test_a_sealed_form_is_not_restored_once_stale_or_altered(client, db, clock):
    make_location(db)
    _, variant_id = make_product(db, clock, stock=1)
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})
    _, back = walk(client, "/checkout", {**CHECKOUT_FORM, "key": "k1"})

    altered = back.replace("returned=v1%3A", "returned=v1%3AA")
    clock.advance(minutes=31)
    stale = client.get(back)
    altered_page = client.get(altered)

    for page in (stale, altered_page):
        assert page.status_code == 200
        assert 'value="1 Fournier St"' not in page.text
        assert "Card ending 4242, given to the payment provider." in page.text
