"""Catalog: graded goods must disclose their condition; prices are integer minor units."""

import pytest
from fastapi.testclient import TestClient

from dropline.catalog.models import ConditionGrade
from dropline.catalog.rules import disclosure_problem
from dropline.catalog.service import VariantSpec, create_product
from dropline.errors import AlreadyExists, InvalidInput
from dropline.web.app import create_app
from tests.builders import api_token, make_location, make_product, sign_up_token


def test_new_goods_need_no_disclosure_but_graded_goods_do():
    assert disclosure_problem(ConditionGrade.new, "") is None
    assert "disclosure" in disclosure_problem(ConditionGrade.refurbished_b, "ok")
    assert disclosure_problem(ConditionGrade.used, "Small chip on the base, fully working") is None


def test_a_graded_variant_without_disclosure_is_refused(db, clock):
    with pytest.raises(InvalidInput, match="disclosure"), db.transaction() as session:
        create_product(session, clock=clock, name="Diffuser", family_slug="diffusers",
                       variants=[VariantSpec("D-1", "Stone", 3000, "GBP",
                                             ConditionGrade.refurbished_a, "")])


def test_duplicate_skus_are_refused(db, clock):
    spec = VariantSpec("DUP-1", "50 ml", 3000, "GBP")
    with db.transaction() as session:
        create_product(session, clock=clock, name="First", family_slug="edp", variants=[spec])
    with pytest.raises(AlreadyExists, match="DUP-1"), db.transaction() as session:
        create_product(session, clock=clock, name="Second", family_slug="edp", variants=[spec])


def test_product_api_shows_price_grade_disclosure_and_availability(client, db, clock):
    make_location(db)
    make_product(db, clock, name="Oud Noir", price=8500, stock=3,
                 grade=ConditionGrade.refurbished_a, disclosure="Atomiser replaced, as new.")

    response = client.get("/api/v1/products/oud-noir")

    assert response.status_code == 200
    variant = response.json()["variants"][0]
    assert variant["price_amount"] == 8500 and variant["currency"] == "GBP"
    assert variant["condition_grade"] == "refurbished-a"
    assert variant["condition_disclosure"] == "Atomiser replaced, as new."
    assert variant["available"] == 3


def test_admin_creates_a_product_and_sets_stock_and_price(client, db, clock):
    make_location(db)
    headers = api_token(db, clock, "catalog:write")
    created = client.post("/api/v1/admin/products", headers=headers, json={
        "name": "Smoke & Fig", "family": "eau-de-parfum",
        "variants": [{"sku": "SF-50", "name": "50 ml", "price_amount": 9500, "currency": "GBP"}],
    })
    assert created.status_code == 201, created.text
    variant_id = created.json()["variants"][0]["id"]

    stock = client.put("/api/v1/admin/stock", headers=headers,
                       json={"location": "central", "variant_id": variant_id, "on_hand": 12})
    price = client.put(f"/api/v1/admin/variants/{variant_id}/price", headers=headers,
                       json={"price_amount": 9900})

    assert stock.status_code == 200 and stock.json()["on_hand"] == 12
    assert price.status_code == 200 and price.json()["price_amount"] == 9900
    product = client.get("/api/v1/products/smoke-fig").json()
    assert product["variants"][0]["available"] == 12
    assert product["variants"][0]["price_amount"] == 9900


def test_storefront_pages_render_products_and_a_readable_404(client, db, clock):
    make_location(db)
    make_product(db, clock, name="Vetiver Rain", price=6200,
                 grade=ConditionGrade.used, disclosure="Half-full bottle, box missing.")

    home = client.get("/")
    page = client.get("/products/vetiver-rain")
    missing = client.get("/products/nothing-here")

    assert home.status_code == 200 and "Vetiver Rain" in home.text and "£62.00" in home.text
    assert page.status_code == 200 and "Half-full bottle, box missing." in page.text
    assert "Used" in page.text
    assert missing.status_code == 404 and "could not find" in missing.text


def test_utm_source_on_a_page_becomes_the_acquisition_source_at_sign_up(client, db, clock):
    make_location(db)
    client.get("/?utm_source=instagram&utm_campaign=spring-drop")

    response = client.post("/api/v1/customers",
                           json={"email": "ig@example.com", "password": "long enough pass"})

    assert response.status_code == 202
    me = client.post("/api/v1/customers/confirmations",
                     json={"token": sign_up_token(client, "ig@example.com")}).json()
    assert me["acquisition_source"] == "instagram"
    assert me["acquisition_campaign"] == "spring-drop"


def test_money_filter_formats_minor_units_with_sign_and_symbol():
    from dropline.web.pages import money

    assert money(4200) == "£42.00"
    assert money(-150) == "-£1.50"
    assert money(123456789) == "£1,234,567.89"
    assert money(5, "SEK") == "0.05 SEK"


@pytest.mark.parametrize("query", ["utm_source=%3Cscript%3E", "utm_source=a%7Cb",
                                   "utm_source=" + "x" * 65, "utm_source="])
def test_a_utm_source_sign_up_would_refuse_is_not_remembered(client, db, query):
    make_location(db)

    page = client.get(f"/?{query}")

    assert page.status_code == 200
    assert "dl_acq" not in page.headers.get("set-cookie", "")


def test_a_forged_acquisition_cookie_is_not_taken_at_sign_up(client, db):
    make_location(db)
    client.cookies.set("dl_acq", "<b>pwned</b>|x")

    response = client.post("/api/v1/customers",
                           json={"email": "forged@example.com", "password": "long enough pass"})

    assert response.status_code == 202
    me = client.post("/api/v1/customers/confirmations",
                     json={"token": sign_up_token(client, "forged@example.com")}).json()
    assert me["acquisition_source"] == "direct"
    assert me["acquisition_campaign"] == ""


def test_the_acquisition_cookie_is_secure_when_the_site_is(db, clock, settings):
    make_location(db)
    secure = settings.model_copy(update={"web": settings.web.model_copy(
        update={"cookie_secure": True})})
    with TestClient(create_app(secure, clock=clock, db=db, run_worker=False),
                    base_url="https://testserver") as client:
        page = client.get("/?utm_source=instagram&utm_campaign=spring")

    cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith("dl_acq="))
    assert "Secure" in cookie and "HttpOnly" in cookie
