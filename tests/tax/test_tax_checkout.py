"""VAT through the checkout: every line, the totals and the receipt carry it; prices entered
without tax get it added (and the charge is the total with it); a business buyer's VAT number
from another EU state is reverse-charged, a bad one is refused beside its field and changes
nothing; rates and classes are edited from the CLI."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.orders.models import Order
from dropline.tax import service
from dropline.tax.rules import TaxClass
from dropline.web.app import create_app
from tests.builders import (
    ADDRESS,
    api_token,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
)
from tests.storefront.builders import CHECKOUT_FORM
from tests.web.support import browser_session

runner = CliRunner()


def _pay(client, cart_id, **extra):
    return client.post("/api/v1/checkout", json={**checkout_body(cart_id), **extra},
                       headers={"Idempotency-Key": str(uuid.uuid4())})


def _classed(db, product_id, tax_class):
    with db.transaction() as session:
        service.set_tax_class(session, product_id=product_id, tax_class=tax_class)


def test_vat_is_on_every_line_and_the_total_of_a_uk_order_with_prices_including_it(
        client, db, clock):
    make_location(db)
    _, standard = make_product(db, clock, price=1200, stock=5)
    book, reduced = make_product(db, clock, price=1050, stock=5)
    _classed(db, book, TaxClass.reduced)
    sign_up(client)
    cart = cart_with(client, standard)
    client.put(f"/api/v1/carts/{cart}/lines/{reduced}", json={"quantity": 1})

    order = _pay(client, cart).json()

    by_rate = {line["tax_rate_bp"]: line["tax_amount"] for line in order["lines"]}
    assert by_rate == {2000: 200, 500: 50}
    # Delivery 3.95 at 20 % includes 0.66; nothing is added to the total.
    assert (order["tax_amount"], order["tax_added_amount"], order["total_amount"]) == (
        316, 0, 1200 + 1050 + 395)
    page = client.get(f"/orders/{order['id']}").text
    assert "Of which VAT" in page and "£3.16" in page


def test_prices_without_tax_get_it_added_and_charged(db, clock, settings):
    settings.shop.prices_include_tax = False
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    app_ = create_app(settings, clock=clock, db=db, run_worker=False)
    with TestClient(app_, raise_server_exceptions=True) as raw:
        client = browser_session(raw)
        sign_up(client)
        order = _pay(client, cart_with(client, variant)).json()

    assert (order["subtotal_amount"], order["shipping_amount"], order["tax_added_amount"]) == (
        1000, 395, 200 + 79)
    assert order["total_amount"] == 1000 + 395 + 279 == order["payments"][0]["amount"]


def test_an_eu_business_buyer_with_a_valid_vat_number_is_reverse_charged(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1200, stock=5)
    sign_up(client)
    cart = cart_with(client, variant)

    quoted = client.post("/api/v1/checkout/quote", json={"cart_id": cart, "country": "DE",
                                                         "vat_number": "DE 136 695 976"})
    order = _pay(client, cart, vat_number="DE136695976",
                 shipping_address={**ADDRESS, "country": "DE"}).json()

    assert quoted.json()["reverse_charge"] is True and quoted.json()["tax_amount"] == 0
    assert (order["reverse_charge"], order["tax_amount"]) == (True, 0)
    assert "reverse charge" in client.get(f"/orders/{order['id']}").text


def test_a_german_consumer_pays_german_vat(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1190, stock=5)
    sign_up(client)
    cart = cart_with(client, variant)

    quoted = client.post("/api/v1/checkout/quote", json={"cart_id": cart, "country": "DE"})

    assert quoted.json()["lines"][0]["tax_rate_bp"] == 1900
    assert quoted.json()["lines"][0]["tax_amount"] == 190


def test_an_invalid_vat_number_is_refused_and_changes_nothing(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1200, stock=5)
    sign_up(client)

    refused = _pay(client, cart_with(client, variant), vat_number="DE136695977")

    assert refused.status_code == 422
    assert refused.json()["field"] == "vat_number"
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_a_refund_shows_the_vat_it_reverses(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=6000, stock=5)
    sign_up(client)
    order = _pay(client, cart_with(client, variant)).json()  # 60.00 incl. 10.00 VAT

    refunded = client.post(f"/api/v1/admin/orders/{order['id']}/refunds",
                           json={"amount": 3000},
                           headers={**api_token(db, clock, "orders:refund"),
                                    "Idempotency-Key": "half"})

    assert refunded.status_code == 201, refunded.text
    assert "(of which VAT £5.00)" in client.get(f"/orders/{order['id']}").text


def test_rates_and_classes_are_edited_from_the_cli(monkeypatch, database_url, db, clock):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    make_location(db)
    product, _ = make_product(db, clock)

    for command in (["tax", "rates", "list"], ["tax", "rates", "set"], ["tax", "class"],
                    ["tax", "check-vat"]):
        helped = runner.invoke(app, [*command, "--help"], terminal_width=200)
        assert helped.exit_code == 0 and "Example: dropline tax" in helped.output
    changed = runner.invoke(app, ["tax", "rates", "set", "de", "standard", "21", "--from",
                                  "2027-01-01"])
    bad = runner.invoke(app, ["tax", "rates", "set", "DE", "standard", "lots"])
    classed = runner.invoke(app, ["tax", "class", str(product), "zero"])
    checked = runner.invoke(app, ["tax", "check-vat", "DE136695977"])

    assert changed.exit_code == 0, changed.output
    assert bad.exit_code == 2 and "percentage" in bad.output
    assert classed.exit_code == 0 and checked.exit_code == 2
    with db.transaction() as session:
        rows = [r for r in service.rate_rows(session) if r.country == "DE"
                and r.tax_class is TaxClass.standard]
        assert sorted((r.valid_from.isoformat(), r.rate_bp) for r in rows)[-1] == (
            "2027-01-01", 2100)
        assert service.tax_classes_of(session, [product]) == {product: TaxClass.zero}


def test_the_checkout_form_takes_a_vat_number_and_names_a_bad_one_beside_it(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1200, stock=5)
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant, "quantity": 1})

    refused = client.post("/checkout", data={**CHECKOUT_FORM, "key": "k1",
                                             "vat_number": "DE136695977"})
    placed = client.post("/checkout", follow_redirects=False,
                         data={**CHECKOUT_FORM, "key": "k2", "country": "DE",
                               "vat_number": "DE136695976"})

    assert refused.status_code == 422
    assert 'id="vat_number-error"' in refused.text and "not a valid" in refused.text
    assert placed.status_code == 303, placed.text[:500]
    with db.transaction() as session:
        order = session.scalar(select(Order))
        assert (order.reverse_charge, order.tax_amount, order.vat_number) == (
            True, 0, "DE136695976")
