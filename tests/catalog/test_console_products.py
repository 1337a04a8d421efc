"""The console's Products area over HTTP: create and edit products and variants, stock
adjustments with a reason (the ledger and the audit trail), graded serials, images (upload,
reorder, confirmed removal). A refused form shows its message beside the field with the
typed values kept and changes nothing; a form without its CSRF token is refused."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dropline.audit.models import AuditLog
from dropline.catalog.models import Product, StockAdjustment, Variant
from dropline.locations.models import StockLevel
from dropline.media.models import MediaAsset
from dropline.risk.models import SerialUnit
from dropline.tax.models import ProductTaxClass
from tests.builders import make_location, make_product, sign_in_console
from tests.media.builders import image_bytes
from tests.web.support import changed_tables, snapshot

NEW_PRODUCT = {"name": "Smoked Fig Candle", "slug": "", "family": "candles",
               "description": "Hand-poured.", "status": "active", "tax_class": "reduced",
               "sku": "CANDLE-FIG", "variant_name": "220 g", "price": "28.50", "grade": "new",
               "disclosure": "", "weight_grams": "400"}


@pytest.fixture
def console(client, db, clock):
    make_location(db, code="central")
    sign_in_console(client, db, clock)
    return client


def _created_id(response) -> int:
    assert response.status_code == 303, response.text[:500]
    return int(re.search(r"/admin/products/(\d+)", response.headers["location"])[1])


def test_an_operator_creates_a_product_and_sees_it_in_the_list(console, db):
    product_id = _created_id(console.post("/admin/products/new", data=NEW_PRODUCT,
                                          follow_redirects=False))
    with db.transaction() as session:
        product = session.get(Product, product_id)
        variant = session.scalars(select(Variant).where(Variant.product_id == product_id)).one()
        assert (product.name, product.slug, product.status.value) == (
            "Smoked Fig Candle", "smoked-fig-candle", "active")
        assert (variant.sku, variant.price_amount, variant.currency, variant.weight_grams) == (
            "CANDLE-FIG", 2850, "GBP", 400)
        assert session.get(ProductTaxClass, product_id).tax_class.value == "reduced"

    listing = console.get("/admin/products", params={"q": "fig"})
    assert listing.status_code == 200 and "Smoked Fig Candle" in listing.text
    assert "£28.50" in listing.text
    assert "Smoked Fig" not in console.get("/admin/products", params={"q": "nothing"}).text


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", " ", "a product needs a name"),
    ("price", "twelve", "enter a price such as 42 or 42.50"),
    ("price", "-3", "enter a price such as 42 or 42.50"),
    ("grade", "refurbished-b", "condition disclosure of at least"),
    ("weight_grams", "heavy", "enter a whole number"),
    ("sku", "", "the first variant needs a SKU"),
])
def test_a_refused_new_product_keeps_the_values_and_says_why_beside_the_field(
        console, db, field, value, message):
    before = snapshot(db)
    page = console.post("/admin/products/new", data={**NEW_PRODUCT, field: value})

    assert page.status_code == 422
    error_field = "disclosure" if field == "grade" else field
    assert re.search(rf'id="f-{error_field}-error" role="alert">[^<]*{re.escape(message)}',
                     page.text), page.text[:3000]
    assert 'value="Smoked Fig Candle"' in page.text or field == "name"
    assert 'value="CANDLE-FIG"' in page.text or field == "sku"
    assert changed_tables(before, snapshot(db)) == []


def test_a_taken_sku_is_a_conflict_beside_the_field(console, db, clock):
    _, variant_id = make_product(db, clock)
    with db.transaction() as session:
        taken = session.get(Variant, variant_id).sku
    before = snapshot(db)
    page = console.post("/admin/products/new", data={**NEW_PRODUCT, "sku": taken})
    assert page.status_code == 409 and 'id="f-sku-error"' in page.text
    assert changed_tables(before, snapshot(db)) == []


def test_editing_details_and_a_variant_is_audited_with_the_actor(console, db, clock):
    product_id, variant_id = make_product(db, clock, price=4200)
    saved = console.post(f"/admin/products/{product_id}", follow_redirects=False, data={
        "name": "Fig Leaf Intense", "family": "eau-de-parfum", "description": "Darker.",
        "status": "draft", "tax_class": "standard"})
    assert saved.status_code == 303
    variant = console.post(f"/admin/products/{product_id}/variants/{variant_id}",
                           follow_redirects=False, data={
                               "variant_name": "50 ml", "price": "45", "grade": "refurbished-a",
                               "disclosure": "Box opened, bottle untouched.",
                               "weight_grams": "300", "active": "yes"})
    assert variant.status_code == 303
    with db.transaction() as session:
        product = session.get(Product, product_id)
        row = session.get(Variant, variant_id)
        assert (product.name, product.status.value) == ("Fig Leaf Intense", "draft")
        assert (row.price_amount, row.condition_grade.value, row.final_sale, row.active) == (
            4500, "refurbished-a", False, True)
        changes = session.scalars(select(AuditLog).where(AuditLog.entity == "variants")).all()
        price_change = [a for a in changes if "price_amount" in a.changes]
        assert price_change and price_change[-1].changes["price_amount"] == [4200, 4500]
        assert price_change[-1].actor.startswith("admin:")


def test_a_graded_variant_without_a_disclosure_is_refused_in_its_own_form(console, db, clock):
    product_id, variant_id = make_product(db, clock)
    before = snapshot(db)
    page = console.post(f"/admin/products/{product_id}/variants/{variant_id}", data={
        "variant_name": "50 ml", "price": "40", "grade": "used", "disclosure": "",
        "weight_grams": "0"})
    assert page.status_code == 422
    assert f'id="variant-{variant_id}-disclosure-error"' in page.text
    assert f'<details class="variant" id="variant-{variant_id}" open>' in page.text
    assert changed_tables(before, snapshot(db)) == []


def test_a_stock_adjustment_records_its_reason_and_never_goes_below_zero(console, db, clock):
    product_id, variant_id = make_product(db, clock, stock=5)
    added = console.post(f"/admin/products/{product_id}/stock", follow_redirects=False, data={
        "variant_id": str(variant_id), "location": "central", "delta": "12",
        "reason": "received", "note": "PO 881"})
    assert added.status_code == 303 and "17%20on%20hand" in added.headers["location"]

    before = snapshot(db)
    refused = console.post(f"/admin/products/{product_id}/stock", data={
        "variant_id": str(variant_id), "location": "central", "delta": "-18",
        "reason": "damaged"})
    assert refused.status_code == 422
    assert 'id="stock-delta-error"' in refused.text and "only 17 on hand" in refused.text
    assert 'value="-18"' in refused.text
    assert changed_tables(before, snapshot(db)) == []

    no_reason = console.post(f"/admin/products/{product_id}/stock", data={
        "variant_id": str(variant_id), "location": "central", "delta": "1", "reason": "x"})
    assert no_reason.status_code == 422 and 'id="stock-reason-error"' in no_reason.text

    with db.transaction() as session:
        level = session.scalars(select(StockLevel.on_hand).where(
            StockLevel.variant_id == variant_id)).one()
        ledger = session.scalars(select(StockAdjustment)).all()
        audit = session.scalars(select(AuditLog).where(
            AuditLog.entity == "stock_adjustments")).all()
    assert level == 17
    assert [(a.delta, a.on_hand_after, a.reason, a.note) for a in ledger] == [
        (12, 17, "received", "PO 881")]
    assert len(audit) == 1 and audit[0].actor.startswith("admin:")
    page = console.get(f"/admin/products/{product_id}")
    assert "Goods received: PO 881" in page.text and "+12" in page.text


def test_graded_serials_are_registered_and_a_duplicate_changes_nothing(console, db, clock):
    product_id, variant_id = make_product(db, clock)
    ok = console.post(f"/admin/products/{product_id}/serials", follow_redirects=False, data={
        "variant_id": str(variant_id), "location": "central", "serials": "SN-1\nSN-2"})
    assert ok.status_code == 303
    before = snapshot(db)
    again = console.post(f"/admin/products/{product_id}/serials", data={
        "variant_id": str(variant_id), "location": "central", "serials": "SN-3\nSN-2"})
    assert again.status_code == 409 and "SN-2" in again.text
    assert 'id="serials-serials-error"' in again.text
    assert changed_tables(before, snapshot(db)) == []
    with db.transaction() as session:
        assert sorted(session.scalars(select(SerialUnit.serial))) == ["SN-1", "SN-2"]


def test_images_are_uploaded_reordered_and_removed_only_after_confirmation(console, db, clock):
    product_id, _ = make_product(db, clock)
    for colour, alt in (("#8a4b2e", "The bottle"), ("#2e4b8a", "The box")):
        uploaded = console.post(f"/admin/products/{product_id}/media", follow_redirects=False,
                                data={"alt": alt},
                                files={"file": ("p.png", image_bytes(colour=colour),
                                                "image/png")})
        assert uploaded.status_code == 303, uploaded.text[:500]
    with db.transaction() as session:
        first, second = session.scalars(select(MediaAsset).order_by(MediaAsset.position)).all()
        first_id, second_id = first.id, second.id
    moved = console.post(f"/admin/products/{product_id}/media/{second_id}/move",
                         data={"direction": "up"}, follow_redirects=False)
    assert moved.status_code == 303
    with db.transaction() as session:
        order = session.scalars(select(MediaAsset.alt).order_by(MediaAsset.position)).all()
    assert order == ["The box", "The bottle"]

    confirm = console.get(f"/admin/products/{product_id}/media/{first_id}/remove")
    assert confirm.status_code == 200 and "Remove this image?" in confirm.text
    unconfirmed = console.post(f"/admin/products/{product_id}/media/{first_id}/remove",
                               follow_redirects=False)
    assert unconfirmed.status_code == 303 and unconfirmed.headers["location"].endswith("/remove")
    removed = console.post(f"/admin/products/{product_id}/media/{first_id}/remove",
                           data={"confirm": "yes"}, follow_redirects=False)
    assert removed.status_code == 303
    with db.transaction() as session:
        assert session.scalars(select(MediaAsset.alt)).all() == ["The box"]


def test_a_file_that_is_not_an_image_is_refused_beside_the_file_field(console, db, clock):
    product_id, _ = make_product(db, clock)
    before = snapshot(db)
    page = console.post(f"/admin/products/{product_id}/media", data={"alt": "A bottle"},
                        files={"file": ("notes.png", b"not a picture", "image/png")})
    assert page.status_code == 422 and 'id="media-file-error"' in page.text
    assert 'value="A bottle"' in page.text
    assert changed_tables(before, snapshot(db)) == []


def test_the_list_is_paginated(console, db, clock):
    for n in range(27):
        make_product(db, clock, name=f"Candle {n:02d}")
    first = console.get("/admin/products")
    assert "27 product(s) · page 1 of 2" in first.text and 'rel="next"' in first.text
    second = console.get("/admin/products", params={"page": 2})
    assert "Candle 00" in second.text and "Candle 26" not in second.text


def test_a_forged_product_form_without_its_token_is_refused(client, db, clock):
    make_location(db, code="central")
    sign_in_console(client, db, clock)
    del client.headers["X-CSRF-Token"]
    before = snapshot(db)
    forged = client.post("/admin/products/new", data=NEW_PRODUCT)
    assert forged.status_code == 403
    assert changed_tables(before, snapshot(db)) == []


def test_the_products_pages_need_a_sign_in(client):
    for path in ("/admin/products", "/admin/products/new", "/admin/products/1"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and "/admin/login" in response.headers["location"]
