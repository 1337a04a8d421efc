"""Local listings on the demo brand: the local inventory feed and the schema.org JSON-LD
validate against their schemas; the feed follows stock (ETag by stock version, 304 while
nothing changed); the on-device index is compact, public and revalidatable."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dropline.catalog import service as catalog
from dropline.catalog.api import product_reads
from dropline.db import Database
from dropline.demo import seed_demo
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.popups import listings
from dropline.web.app import create_app
from tests.builders import make_location
from tests.popups.support import open_popup

SCHEMAS = Path(__file__).resolve().parents[2] / "src/dropline/popups/jsonschema"
JSONLD = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.DOTALL)


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validate(instance, name: str) -> None:
    jsonschema.validate(instance, schema(name),
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture
def demo(db, clock, settings):
    # Its own engine: the demo writes in bulk, untouched by hooks an app installed on ``db``.
    own = Database(db.url)
    try:
        seed_demo(own, settings=settings, clock=clock, customers=40, seed=3)
    finally:
        own.dispose()
    return db


def test_the_demo_brand_feed_json_ld_and_index_validate(demo, client):
    """One demo seeding (the slow part) for the three public listings."""
    _feed_validates(demo, client)
    _json_ld_validates(demo, client)
    _index_is_compact_public_and_revalidatable(demo, client)


def _feed_validates(demo, client):
    response = client.get("/feeds/local-inventory.json")
    rows = response.json()

    validate(rows, "local-inventory")
    with demo.transaction() as session:
        stores = {s.code for s in listings.list_stores(session)}
        stock = {(code, sku): q for code, sku, q in session.execute(
            select(Location.code, catalog.Variant.sku, StockLevel.on_hand)
            .join(StockLevel, StockLevel.location_id == Location.id)
            .join(catalog.Variant, catalog.Variant.id == StockLevel.variant_id))}
    assert {r["store_code"] for r in rows} == stores
    assert "popup-spitalfields" in stores and "popup-peckham" not in stores  # closed
    for row in rows:
        assert row["quantity"] == stock.get((row["store_code"], row["id"]), 0)
        assert row["availability"] == listings.availability_of(row["quantity"])

    tsv = client.get("/feeds/local-inventory.tsv")
    assert tsv.headers["content-type"].startswith("text/tab-separated-values")
    parsed = list(csv.DictReader(io.StringIO(tsv.text), delimiter="\t"))
    assert [{**r, "quantity": int(r["quantity"])} for r in parsed] == rows


def test_the_feed_is_rebuilt_only_when_stock_moves(db, client, clock):
    shop = open_popup(db, clock, stock=(3, 5))
    first = client.get("/feeds/local-inventory.json")
    etag = first.headers["etag"]
    builds = client.app.state.popups_feed_cache.builds
    assert client.get("/feeds/local-inventory.json",
                      headers={"If-None-Match": etag}).status_code == 304
    assert client.app.state.popups_feed_cache.builds == builds  # same stock version: not rebuilt
    row = {(r["store_code"], r["availability"], r["quantity"]) for r in first.json()}
    assert ("popup-test", "limited_availability", 3) in row

    with db.transaction() as session:
        catalog.set_stock(session, clock=clock, location_code=shop.code,
                          variant_id=shop.variants[0], on_hand=0, actor="test")

    changed = client.get("/feeds/local-inventory.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert client.app.state.popups_feed_cache.builds == builds + 1
    assert ("popup-test", "out_of_stock", 0) in {
        (r["store_code"], r["availability"], r["quantity"]) for r in changed.json()}


def _json_ld_validates(demo, client):
    with demo.transaction() as session:
        products = product_reads(session, catalog.list_products(session))
    assert products
    for product in products:
        data = listings.product_jsonld(product, base_url="https://shop.example")
        validate(data, "product")
        assert len(data["offers"]) == len(product.variants)

    page = client.get("/stores")
    assert page.status_code == 200
    blocks = [json.loads(b) for b in JSONLD.findall(page.text)]
    assert len(blocks) >= 5  # four hubs and the open pop-up
    for block in blocks:
        validate(block, "store")
    popup = next(b for b in blocks if b["name"].startswith("Spitalfields"))
    assert popup["address"]["postalCode"] == "E1 6EW"
    assert popup["openingHoursSpecification"][0]["validFrom"] < popup[
        "openingHoursSpecification"][0]["validThrough"]
    assert client.get("/stores", headers={"If-None-Match": page.headers["etag"]}
                      ).status_code == 304


def _index_is_compact_public_and_revalidatable(demo, client):
    response = client.get("/api/v1/catalog/index.json")
    body = response.json()

    assert response.headers["cache-control"].startswith("public")
    assert "set-cookie" not in response.headers
    assert {"id", "slug", "name", "family", "tags", "price", "currency", "stock"} == set(
        body["products"][0])
    assert {s["code"] for s in body["stores"]} >= {"popup-spitalfields", "hub-hackney"}
    assert all(s["lat"] is not None for s in body["stores"])
    assert len(response.content) < 40_000
    assert client.get("/api/v1/catalog/index.json", headers={
        "If-None-Match": response.headers["etag"]}).status_code == 304


def test_the_product_page_carries_product_json_ld(client, db, clock):
    from tests.builders import make_location, make_product

    make_location(db, code="central")
    make_product(db, clock, name="Fig Leaf", price=4200, stock=2)

    page = client.get("/products/fig-leaf")

    assert page.status_code == 200
    [block] = [json.loads(b) for b in JSONLD.findall(page.text)]
    validate(block, "product")
    assert block["offers"][0]["price"] == "42.00"
    assert block["offers"][0]["availability"] == "https://schema.org/LimitedAvailability"


def test_the_stores_page_varies_by_host_when_no_public_address_is_set(client, db):
    make_location(db, code="hub-bow", kind=LocationKind.micro_hub)

    page = client.get("/stores", headers={"host": "evil.example"})

    assert page.status_code == 200
    # A cache keeps one copy per host (and per encoding: the answer may be gzipped).
    assert {v.strip() for v in page.headers["vary"].split(",")} == {"Host", "Accept-Encoding"}
    assert "http://evil.example/stores#hub-bow" in page.text


def test_the_stores_page_links_to_the_public_address_whatever_the_host(db, clock, settings):
    make_location(db, code="hub-bow", kind=LocationKind.micro_hub)
    public = settings.model_copy(update={"web": settings.web.model_copy(
        update={"public_url": "https://shop.example"})})
    with TestClient(create_app(public, clock=clock, db=db, run_worker=False)) as client:
        page = client.get("/stores", headers={"host": "evil.example"})

    assert page.status_code == 200
    assert "https://shop.example/stores#hub-bow" in page.text
    assert "evil.example" not in page.text
    assert "host" not in page.headers.get("vary", "").lower()
