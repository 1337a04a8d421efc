"""Tokens, not cards: no route of the shop takes a card number or a CVC. The browser (or a card
reader) hands the card to the payment provider and the shop gets its reference; a request that
still sends a card is refused with the way to tokenise, and the card reaches no table, no
response and no log line."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, Text, select

from dropline.models import metadata
from tests.builders import (
    ADDRESS,
    GOOD_CARD,
    api_token,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
    tokenise,
)
from tests.storefront.builders import CHECKOUT_FORM, counts
from tests.web.support import assert_problem, changed_tables, snapshot

CARD_FIELDS = {"number", "card_number", "cvc", "cvv", "pan", "card", "exp_month", "exp_year"}
NUMBER = GOOD_CARD["number"]


def _request_schemas(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    bodies = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                bodies.append((f"{method.upper()} {path}", media["schema"]))
    return bodies


def _properties(schema: dict[str, Any], spec: dict[str, Any], seen: set[str]) -> set[str]:
    """Every property name reachable from a schema (through $ref, arrays, anyOf/allOf)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return set()
        seen.add(name)
        return _properties(spec["components"]["schemas"][name], spec, seen)
    names: set[str] = set()
    for key, sub in schema.get("properties", {}).items():
        names |= {key, *_properties(sub, spec, seen)}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            names |= _properties(schema[key], spec, seen)
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            names |= _properties(sub, spec, seen)
    return names


def test_no_request_schema_in_the_api_has_a_card_number_or_cvc_field(client):
    spec = client.get("/openapi.json").json()
    bodies = _request_schemas(spec)
    paying = []
    for operation, schema in bodies:
        fields = _properties(schema, spec, set())
        assert not fields & CARD_FIELDS, f"{operation} takes {sorted(fields & CARD_FIELDS)}"
        if "payment_method" in fields:
            paying.append(operation)
    assert len(bodies) > 30  # the sweep saw the whole API
    assert sorted(paying) == [
        "POST /api/v1/admin/popups/{code}/sales",
        "POST /api/v1/checkout",
        "POST /api/v1/drops/holds/{hold_id}/checkout",
        "POST /api/v1/drops/{drop_id}/purchase",
        "POST /api/v1/drops/{drop_id}/waitlist/claim",
        "POST /api/v1/memberships",
        "PUT /api/v1/memberships/current/payment-method",
    ]
    # The local provider's tokenising endpoint is the provider's, not part of the shop's API.
    assert not any(path.startswith("/pay/") for path in spec["paths"])


@pytest.fixture
def world(client: TestClient, db, clock) -> dict[str, Any]:
    make_location(db)
    _, variant_id = make_product(db, clock, stock=5)
    sign_up(client)
    return {"cart_id": cart_with(client, variant_id), "admin": api_token(db, clock, "*")}


def test_every_paying_route_refuses_a_card_with_how_to_tokenise_and_changes_nothing(
        client, db, world, caplog):
    spec = client.get("/openapi.json").json()
    paying = [(op.split()[0], op.split()[1]) for op, schema in _request_schemas(spec)
              if "payment_method" in _properties(schema, spec, set())]
    before = snapshot(db)
    caplog.set_level(logging.DEBUG)
    for card_shape in ({"card": GOOD_CARD}, {"number": NUMBER, "cvc": "123"},
                       {"terminal": {"terminal_id": "term_x", "card": GOOD_CARD}}):
        for method, path in paying:
            url = path.replace("{code}", "popup").replace("{hold_id}", "1").replace(
                "{drop_id}", "1")
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            if "/admin/" in path:
                headers.update(world["admin"])
            body = {**checkout_body(world["cart_id"]), **card_shape}
            response = client.request(method, url, json=body, headers=headers)

            problem = assert_problem(response, 422)
            assert problem["type"].endswith("/card-data-refused"), (path, problem)
            assert "tokenise" in problem["detail"] and "payment_method" in problem["detail"]
            assert NUMBER not in response.text
    # Only the admin token's last-used stamp moves; no order, payment, ledger or key row.
    assert changed_tables(before, snapshot(db)) in ([], ["api_tokens"])
    assert not [r for r in caplog.records if NUMBER in r.getMessage()]


def test_the_checkout_page_refuses_posted_card_fields_and_asks_for_the_tokenised_card(
        client, db, clock):
    make_location(db)
    _, variant_id = make_product(db, clock, stock=1)
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})
    form = {**CHECKOUT_FORM, "key": "page-1"}

    with_card = client.post("/checkout", data={**form, "number": NUMBER, "cvc": "123"})
    # Without JavaScript: on to the provider's hosted card page, nothing written.
    untokenised = client.post("/checkout", data={**form, "payment_method": ""},
                              follow_redirects=False)

    assert with_card.status_code == 422 and "tokenise the card" in with_card.text
    assert NUMBER not in with_card.text and "Ada Lovelace" in with_card.text
    assert untokenised.status_code == 303
    assert untokenised.headers["location"].startswith("/pay/local/card?return_to=%2Fcheckout")
    assert counts(db) == {"orders": 0, "payments": 0, "charges": 0}


def test_a_card_tokenised_with_the_local_provider_pays_and_is_kept_nowhere(client, db, clock,
                                                                          caplog):
    caplog.set_level(logging.DEBUG)
    make_location(db)
    _, variant_id = make_product(db, clock, stock=2)
    sign_up(client)
    reference = tokenise(client)
    paid = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant_id),
                                                              reference),
                       headers={"Idempotency-Key": "tok-1"})
    assert paid.status_code == 201, paid.text
    assert reference.startswith("pm_") and paid.json()["payments"][0]["card_last4"] == "4242"

    with db.transaction() as session:  # grep every text column of every table
        for table in metadata.sorted_tables:
            text_columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in session.execute(select(*text_columns)) if text_columns else ():
                assert not any(NUMBER in str(value) for value in row), table.name
    assert not [r for r in caplog.records if NUMBER in r.getMessage()]


def test_the_tokenising_endpoint_refuses_a_bad_card_without_echoing_it(client, db):
    bad = client.post("/pay/local/tokens", json={**GOOD_CARD, "number": "4242424242424241"})
    malformed = client.post("/pay/local/tokens", json={**GOOD_CARD, "cvc": "12x"})
    unknown = client.post("/api/v1/checkout", json={
        "cart_id": str(uuid.uuid4()), "payment_method": "pm_never_issued",
        "shipping_address": ADDRESS}, headers={"Idempotency-Key": "u-1"})

    assert assert_problem(bad, 422)["code"] == "invalid_number"
    assert "4242424242424241" not in bad.text
    assert assert_problem(malformed, 422) and "12x" not in malformed.text
    assert unknown.status_code in (401, 422)  # no customer here: refused before the card
