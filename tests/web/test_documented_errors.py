"""Error answers are documented (``web.problem_docs``): every operation of the OpenAPI document
lists the statuses it can be refused with, each as ``application/problem+json`` with the one
``Problem`` schema, and the refusals the API actually sends match that schema. ``true`` and
``false`` are refused where a number is asked for (``dropline.schemas.Input``)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from dropline.problem_json import PROBLEM_JSON
from dropline.schemas import Id, Input
from tests.builders import api_token, make_location, make_product, sign_up
from tests.web.support import assert_problem, changed_tables, snapshot

METHODS = ("get", "post", "put", "patch", "delete")


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_error_answer_of_every_operation_is_a_problem(client):
    document = client.app.openapi()
    undocumented = []
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.isdigit() and int(status) >= 400 and response.get("content") != {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}:
                undocumented.append((method, path, status))
        if not {"422", "503"} <= set(operation["responses"]):
            undocumented.append((method, path, "422/503"))

    assert undocumented == []
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_an_operation_lists_what_the_floor_can_refuse_it_with(client):
    paths = client.app.openapi()["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return {s for s in paths[path][method]["responses"] if int(s) >= 400}

    # A public read: no credentials to refuse, nothing in the path to miss.
    assert statuses("/api/v1/products", "get") == {"422", "503"}
    # A public read of one object.
    assert statuses("/api/v1/products/{slug}", "get") == {"404", "422", "503"}
    # An admin read: credentials (401) and scope (403).
    assert statuses("/api/v1/admin/orders", "get") == {"401", "403", "422", "503"}
    # A customer's write: and the body, the state, the content type and the throttles.
    assert statuses("/api/v1/checkout", "post") >= {
        "400", "401", "402", "403", "404", "409", "415", "422", "429", "503"}


@pytest.mark.parametrize("request_args", [
    ("GET", "/api/v1/admin/orders", {}),  # 401: no token
    ("GET", "/api/v1/products/no-such-product", {}),  # 404
    ("GET", "/api/v1/products", {"params": {"limit": "0"}}),  # 422: validation
    ("POST", "/api/v1/carts/not-a-cart/lines", {"content": b"{", "headers": {
        "content-type": "application/json"}}),  # 400 or 404 or 422, whichever the floor says
    ("POST", "/api/v1/customers", {"content": b"{not json", "headers": {
        "content-type": "application/json"}}),  # 400: malformed JSON
])
def test_refusals_match_the_documented_problem_schema(client, request_args):
    method, path, kwargs = request_args
    schema = client.app.openapi()["components"]["schemas"]["Problem"]

    response = client.request(method, path, **kwargs)

    problem = assert_problem(response)
    jsonschema.validate(problem, schema)


def test_a_scope_refusal_matches_the_problem_schema(client, db, clock):
    schema = client.app.openapi()["components"]["schemas"]["Problem"]

    response = client.get("/api/v1/admin/orders", headers=api_token(db, clock, "catalog:write"))

    jsonschema.validate(assert_problem(response, 403), schema)


class Body(Input):
    count: Id
    counts: tuple[int, ...] = ()
    maybe: int | None = None
    flag: bool = False
    either: bool | int = 0


@pytest.mark.parametrize("fields", [
    {"count": False}, {"count": True}, {"count": 1, "counts": [1, True]},
    {"count": 1, "maybe": False}])
def test_a_boolean_is_no_number(fields):
    with pytest.raises(ValidationError, match="must not be true or false"):
        Body(**fields)


def test_a_boolean_field_still_takes_booleans():
    body = Body(count=1, flag=True, either=True)

    assert (body.count, body.flag, body.either) == (1, True, True)


def test_the_api_refuses_false_as_a_quantity_and_changes_nothing(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock)
    sign_up(client)
    cart = client.post("/api/v1/carts").json()["id"]
    before = snapshot(db)

    response = client.put(f"/api/v1/carts/{cart}/lines/{variant}", json={"quantity": False})

    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "quantity"]
    assert changed_tables(before, snapshot(db)) == []


@pytest.mark.parametrize("path", [
    "/api/v1/admin/audit?until=0.5", "/api/v1/admin/audit.csv?since=1700000000",
    "/api/v1/admin/memberships/metrics?until=0.5", "/api/v1/admin/telemetry/cohorts?as_of=0.5",
    "/api/v1/admin/telemetry/ltv?calibration_end=0", "/api/v1/admin/fulfilment/windows?from=1e9",
    "/api/v1/admin/pick-lists/central?day=20260301"])
def test_a_number_is_no_date_or_time_in_a_query(client, db, clock, path):
    """The document says RFC 3339 text; pydantic alone would read a number as a Unix time."""
    response = client.get(path, headers=api_token(db, clock, "*"))

    problem = assert_problem(response, 422)
    assert "not a number" in problem["errors"][0]["msg"]


def test_a_number_is_no_date_time_in_a_body_either(client, db, clock):
    headers = api_token(db, clock, "*")
    before = snapshot(db)
    response = client.post("/api/v1/admin/popups", headers=headers, json={
        "location": "central", "hub": "central", "opens_at": 0, "closes_at": "2026-03-02T10:00"})

    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "opens_at"]
    # the token's last use is noted; nothing else is written
    assert changed_tables(before, snapshot(db)) in ([], ["api_tokens"])


def test_text_dates_and_times_are_still_read(client, db, clock):
    headers = api_token(db, clock, "*")
    assert client.get("/api/v1/admin/audit?until=2026-03-01T10:00:00Z",
                      headers=headers).status_code == 200
    assert client.get("/api/v1/admin/telemetry/ltv?calibration_end=2026-01-01",
                      headers=headers).status_code == 200


def test_an_unknown_location_filter_is_a_documented_404(client, db, clock):
    document = client.get("/openapi.json").json()
    documented = document["paths"]["/api/v1/admin/fulfilment/windows"]["get"]["responses"]

    response = client.get("/api/v1/admin/fulfilment/windows?location=nowhere",
                          headers=api_token(db, clock, "*"))

    assert_problem(response, 404)
    assert "404" in documented


class Switch(Input):
    enabled: bool
    maybe: bool | None = None


@pytest.mark.parametrize("fields", [{"enabled": 0}, {"enabled": 1}, {"enabled": 1.0},
                                    {"enabled": True, "maybe": 0}])
def test_a_number_is_no_boolean(fields):
    with pytest.raises(ValidationError, match="must be true or false, not a number"):
        Switch(**fields)


def test_the_api_refuses_0_as_a_rule_switch_and_changes_nothing(client, db, clock):
    headers = api_token(db, clock, "*")
    before = client.get("/api/v1/admin/fulfilment/rules", headers=headers).json()

    response = client.put("/api/v1/admin/fulfilment/rules", headers=headers, json={"rules": [
        {"name": "r", "conditions": [], "action": "prefer-hub", "max_premium_amount": 0,
         "enabled": 0}]})

    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"][-1] == "enabled"
    assert client.get("/api/v1/admin/fulfilment/rules", headers=headers).json() == before


def test_the_documented_email_pattern_means_the_same_in_every_regex_dialect(client):
    """``\\s`` is wider in Python than in the ECMA regex of JSON Schema (U+0085): the pattern
    names its characters, so a client reading the document and the server agree."""
    document = client.get("/openapi.json").json()
    pattern = document["components"]["schemas"]["PasswordResetRequest"]["properties"][
        "email"]["pattern"]

    assert "\\s" not in pattern
    refused = client.post("/api/v1/password-resets", json={"email": "a\u0085b@example.com"})
    assert assert_problem(refused, 422)["errors"][0]["loc"] == ["body", "email"]
    assert client.post("/api/v1/password-resets",
                       json={"email": "ad\u00e9le@example.com"}).status_code == 202


def test_a_rules_premium_is_bounded_alike_by_the_document_and_the_rule(client, db, clock):
    headers = api_token(db, clock, "*")
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RuleIn"]
    bound = next(option["maximum"] for option in
                 schema["properties"]["max_premium_amount"]["anyOf"] if "maximum" in option)
    rule = {"name": "r", "conditions": [], "action": "prefer-hub", "enabled": True}

    at_bound = client.put("/api/v1/admin/fulfilment/rules", headers=headers,
                          json={"rules": [{**rule, "max_premium_amount": bound}]})
    over = client.put("/api/v1/admin/fulfilment/rules", headers=headers,
                      json={"rules": [{**rule, "max_premium_amount": bound + 1}]})

    assert at_bound.status_code == 200, at_bound.text
    assert assert_problem(over, 422)["errors"][0]["loc"][-1] == "max_premium_amount"


@pytest.mark.parametrize("key", ["x-schemathesis-additional", " 1", "+1", "1_0", "0"])
def test_story_notes_are_keyed_by_digits_as_documented(client, db, clock, key):
    headers = api_token(db, clock, "*")
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DropStoryIn"]
    assert schema["properties"]["notes"]["propertyNames"]["pattern"] == r"^[1-9][0-9]{0,15}$"

    response = client.put("/api/v1/admin/drops/1/story", headers=headers,
                          json={"notes": {key: "a note"}})

    problem = assert_problem(response, 422)
    assert "keyed by variant id" in problem["detail"]
