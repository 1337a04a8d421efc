"""Bad input never causes a 500 and never changes state.

Every write endpoint is sent malformed JSON, wrong types, missing and unknown fields, huge
integers, very long strings, NUL and lone-surrogate characters, arrays where objects belong and
unknown ids; each request must come back as a 4xx ``application/problem+json`` and leave every
row of every table as it was (``support.snapshot``). The mutations are derived from one valid
body per endpoint and its Pydantic model, so a field added later is swept too.
"""

from __future__ import annotations

import json
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from dropline.admin.api import TokenCreate
from dropline.carts.schemas import LineSet
from dropline.catalog.schemas import PriceUpdate, ProductCreate, StockUpdate
from dropline.customers.schemas import CustomerCreate, SessionCreate
from dropline.orders.schemas import CheckoutCreate, RefundCreate
from dropline.webhooks.api import EndpointCreate
from tests.builders import (
    GOOD_CARD,
    PASSWORD,
    api_token,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
)
from tests.web.support import assert_problem, changed_tables, snapshot

# --- the world every bad request is aimed at ------------------------------------------------


@dataclass(frozen=True)
class World:
    email: str
    product_id: int
    variant_id: int
    cart_id: str  # the signed-in customer's open cart, holding one unit
    order_id: int  # a paid order, refundable
    admin: dict[str, str]


@pytest.fixture
def world(client: TestClient, db, clock) -> World:
    make_location(db)
    product_id, variant_id = make_product(db, clock, price=4200, stock=10)
    email = sign_up(client)["email"]
    paid = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant_id)),
                       headers={"Idempotency-Key": "world-order"})
    assert paid.status_code == 201, paid.text
    cart_id = cart_with(client, variant_id)
    admin = api_token(db, clock, "*")
    # Time moves on, so a refused request that merely touches a timestamp shows up in the
    # snapshots. A token's use stamps its last_used_at: stamp it once now; the frozen clock
    # then makes every later stamp identical.
    clock.advance(minutes=5)
    assert client.get("/api/v1/admin/scopes", headers=admin).status_code == 200
    return World(email=email, product_id=product_id, variant_id=variant_id, cart_id=cart_id,
                 order_id=paid.json()["id"], admin=admin)


# --- the write endpoints, each with a body that would succeed -------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # ``str.format`` template over the World's fields
    model: type[BaseModel] | None
    valid_body: Callable[[World], Any]
    admin: bool = False
    idempotent: bool = False
    # Path parameters that name a row: (placeholder, kind) with kind "id" or "uuid".
    path_ids: tuple[tuple[str, str], ...] = ()
    # Extra bodies refused for a reason the generic mutations cannot know.
    specific: Callable[[World], list[tuple[str, Any]]] = field(default=lambda w: [])


def _product_body(world: World) -> dict[str, Any]:
    return {
        "name": "Vetiver Noir", "slug": "vetiver-noir", "family": "eau-de-parfum",
        "description": "Smoky.", "status": "active",
        "variants": [{"sku": "VET-50", "name": "50 ml", "price_amount": 6400, "currency": "GBP",
                      "condition_grade": "new", "condition_disclosure": "",
                      "weight_grams": 310, "final_sale": False}],
    }


ENDPOINTS = [
    Endpoint("sign-up", "POST", "/api/v1/customers", CustomerCreate,
             lambda w: {"email": "new@example.com", "password": PASSWORD, "name": "Ada",
                        "acquisition_source": "instagram", "acquisition_campaign": "spring"},
             # A taken email is no refusal: it is answered as a new one (tests/accounts).
             specific=lambda w: [("common password", {"email": "b@example.com",
                                                      "password": "1234567890"}),
                                 ("short password", {"email": "b@example.com",
                                                     "password": "short"}),
                                 ("not an email", {"email": "nobody", "password": PASSWORD})]),
    Endpoint("sign-in", "POST", "/api/v1/sessions", SessionCreate,
             lambda w: {"email": w.email, "password": PASSWORD},
             specific=lambda w: [("wrong password", {"email": w.email, "password": "x" * 12}),
                                 ("unknown email", {"email": "ghost@example.com",
                                                    "password": PASSWORD})]),
    Endpoint("start-cart", "POST", "/api/v1/carts", None, lambda w: {}),
    Endpoint("set-cart-line", "PUT", "/api/v1/carts/{cart_id}/lines/{variant_id}", LineSet,
             lambda w: {"quantity": 2},
             path_ids=(("cart_id", "uuid"), ("variant_id", "id")),
             specific=lambda w: [("more than in stock", {"quantity": 11}),
                                 ("over the line cap", {"quantity": 100})]),
    Endpoint("checkout", "POST", "/api/v1/checkout", CheckoutCreate,
             lambda w: checkout_body(w.cart_id), idempotent=True,
             specific=lambda w: [("a card number instead of a reference",
                                  {**checkout_body(w.cart_id), "card": GOOD_CARD}),
                                 ("a CVC beside the reference",
                                  {**checkout_body(w.cart_id), "cvc": "123"}),
                                 ("a reference that is not one",
                                  checkout_body(w.cart_id, "4242 4242 4242 4242"))]),
    Endpoint("create-product", "POST", "/api/v1/admin/products", ProductCreate, _product_body,
             admin=True,
             specific=lambda w: [("no variants", {**_product_body(w), "variants": []}),
                                 ("duplicate SKUs", {**_product_body(w), "variants": [
                                     *_product_body(w)["variants"],
                                     *_product_body(w)["variants"]]}),
                                 ("bad currency", {**_product_body(w), "variants": [
                                     {**_product_body(w)["variants"][0], "currency": "gbp"}]}),
                                 ("graded without disclosure", {**_product_body(w), "variants": [
                                     {**_product_body(w)["variants"][0],
                                      "condition_grade": "b"}]})]),
    Endpoint("set-price", "PUT", "/api/v1/admin/variants/{variant_id}/price", PriceUpdate,
             lambda w: {"price_amount": 5000}, admin=True, path_ids=(("variant_id", "id"),)),
    Endpoint("count-stock", "PUT", "/api/v1/admin/stock", StockUpdate,
             lambda w: {"location": "central", "variant_id": w.variant_id, "on_hand": 7},
             admin=True,
             specific=lambda w: [("unknown location", {"location": "nowhere",
                                                       "variant_id": w.variant_id, "on_hand": 7}),
                                 ("unknown variant", {"location": "central",
                                                      "variant_id": 999_999, "on_hand": 7})]),
    Endpoint("issue-token", "POST", "/api/v1/admin/tokens", TokenCreate,
             lambda w: {"name": "ci", "scopes": ["orders:read"],
                        "expires_at": "2027-01-01T00:00:00Z"}, admin=True,
             specific=lambda w: [("unknown scope", {"name": "ci", "scopes": ["root"]}),
                                 ("no scopes", {"name": "ci", "scopes": []}),
                                 ("naive expiry", {"name": "ci", "scopes": ["orders:read"],
                                                   "expires_at": "2027-01-01T00:00:00"}),
                                 ("expiry beyond year 9999", {"name": "ci", "scopes": ["*"],
                                                              "expires_at": "+10000-01-01"})]),
    Endpoint("register-webhook", "POST", "/api/v1/admin/webhooks", EndpointCreate,
             lambda w: {"url": "https://example.com/hooks", "event_types": ["order.paid"],
                        "description": "ledger"}, admin=True,
             specific=lambda w: [("ftp url", {"url": "ftp://example.com/hooks"}),
                                 ("relative url", {"url": "/just/a/path"}),
                                 ("bad event type", {"url": "https://example.com/hooks",
                                                     "event_types": ["Order Paid"]})]),
    Endpoint("refund", "POST", "/api/v1/admin/orders/{order_id}/refunds", RefundCreate,
             lambda w: {"amount": 100, "reason": "scuffed box"}, admin=True, idempotent=True,
             path_ids=(("order_id", "id"),)),
]
BY_NAME = {endpoint.name: endpoint for endpoint in ENDPOINTS}


def send(client: TestClient, world: World, endpoint: Endpoint, *, body: Any = None,
         raw: bytes | None = None, path: dict[str, Any] | None = None,
         content_type: str = "application/json") -> Any:
    """Sends ``body`` as JSON (ASCII-escaped, so lone surrogates survive), or ``raw`` bytes."""
    headers = {"content-type": content_type}
    if endpoint.admin:
        headers.update(world.admin)
    if endpoint.idempotent:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    content = raw if raw is not None else json.dumps(body).encode()
    url = endpoint.path.format(**{**vars(world), **(path or {})})
    return client.request(endpoint.method, url, content=content, headers=headers)


# --- deriving bad bodies from a valid one -----------------------------------------------------

Path_ = tuple[str | int, ...]


def nodes(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every value below the root, with its path (keys and list indices)."""
    children = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in children:
        yield (*path, key), child
        yield from nodes(child, (*path, key))


def replaced(body: Any, path: Path_, new: Any) -> Any:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def without(body: Any, path: Path_) -> Any:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if model := _submodel(arg):
                return model
    return None


def model_at(model: type[BaseModel] | None, path: Path_) -> type[BaseModel] | None:
    for key in path:
        if model is None:
            return None
        if isinstance(key, str):
            info = model.model_fields.get(key)
            model = _submodel(info.annotation) if info else None
    return model


def required_paths(body: Any, model: type[BaseModel] | None) -> list[Path_]:
    """Paths of the fields the model requires, at the root and inside nested objects."""
    containers = [((), body)] + [(p, v) for p, v in nodes(body) if isinstance(v, dict)]
    found = []
    for path, value in containers:
        sub = model_at(model, path)
        if sub is not None:
            found += [(*path, name) for name, info in sub.model_fields.items()
                      if info.is_required() and name in value]
    return found


def wrong_types(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [{"item": value}, "a string"]
    if isinstance(value, dict):
        return ["a string", [value]]
    return [[value], {"value": value}]


def with_inserted(text: str, bad: str) -> str:
    return text[:1] + bad + text[1:] if text else bad


def bad_bodies(kind: str, world: World, endpoint: Endpoint) -> list[tuple[str, Any]]:
    """(label, body) pairs of one kind of bad input, each refused by the endpoint."""
    valid = endpoint.valid_body(world)
    leaves = [(p, v) for p, v in nodes(valid) if not isinstance(v, (dict, list))]
    objects = [((), valid)] + [(p, v) for p, v in nodes(valid) if isinstance(v, dict)]
    label = lambda path: ".".join(map(str, path)) or "<body>"
    if kind == "wrong-types":
        return [(f"{label(p)}={w!r:.40}", replaced(valid, p, w))
                for p, v in nodes(valid) for w in wrong_types(v)]
    if kind == "missing-required":
        return [(f"without {label(p)}", without(valid, p))
                for p in required_paths(valid, endpoint.model)]
    if kind == "unknown-field":
        return [(f"{label(p)}.unexpected", replaced(valid, (*p, "unexpected"), 1) if p
                 else {**valid, "unexpected": 1}) for p, _ in objects]
    if kind == "huge-integers":
        return [(f"{label(p)}={n}", replaced(valid, p, n))
                for p, v in leaves if isinstance(v, int) and not isinstance(v, bool)
                for n in (10**30, 2**63, -1)]
    if kind == "long-strings":
        return [(f"{label(p)}=<100k chars>", replaced(valid, p, "x" * 100_000))
                for p, v in leaves if isinstance(v, str)]
    if kind == "control-characters":
        return [(f"{label(p)} with {bad!r}", replaced(valid, p, with_inserted(v, bad)))
                for p, v in leaves if isinstance(v, str) for bad in ("\x00", "\ud800")]
    if kind == "not-an-object":
        return [("array", [valid]), ("empty array", []), ("string", "text"), ("number", 42),
                ("boolean", True)]
    if kind == "specific":
        return endpoint.specific(world)
    raise AssertionError(kind)


KINDS = ["wrong-types", "missing-required", "unknown-field", "huge-integers", "long-strings",
         "control-characters", "not-an-object", "specific"]
MALFORMED_JSON = [b'{"quantity": ', b"{'single': 'quotes'}", b"\xff\xfe{}", b'{"a": 1,}',
                  b"nul\x00", b"{}}"]
PATHOLOGICAL_JSON = [b"[" * 100_000 + b"]" * 100_000, b'{"n": NaN}', b'{"n": 1e400}',
                     b'{"a": 1, "a": {"b": -Infinity}}', b'"' + b"x" * 2_000_000 + b'"']


# --- the sweep --------------------------------------------------------------------------------
# Each test loops over many cases against one world (building a world per case would take
# minutes) and reports every failing case at once; the snapshot is taken around each request.


class Refusals:
    """Checks each response is a refusal that changed nothing, collecting the failures."""

    def __init__(self, db) -> None:
        self.db = db
        self.failures: list[str] = []

    def check(self, label: str, send_request: Callable[[], Any], *, status: int | None = None,
              slug: str | None = None, authorised: bool = True) -> None:
        before = snapshot(self.db)
        response = send_request()
        try:
            problem = assert_problem(response, status)
            if slug is not None:
                assert problem["type"].endswith("/" + slug), problem["type"]
            if authorised:  # the caller may act, so a refusal must be about the input
                assert response.status_code not in (401, 403), response.text
            assert changed_tables(before, snapshot(self.db)) == []
        except AssertionError as exc:
            self.failures.append(f"{label}: {response.status_code} {exc}"[:600])

    def assert_none(self) -> None:
        assert not self.failures, f"{len(self.failures)} case(s):\n" + "\n".join(self.failures)


@pytest.mark.parametrize("endpoint_name", list(BY_NAME))
def test_bad_bodies_are_refused_with_a_4xx_problem_and_change_nothing(
        client, db, world, endpoint_name):
    endpoint = BY_NAME[endpoint_name]
    refusals = Refusals(db)
    for kind in KINDS:
        for label, body in bad_bodies(kind, world, endpoint):
            refusals.check(f"{kind}: {label}", lambda: send(client, world, endpoint, body=body),
                           authorised=kind != "specific")
    refusals.assert_none()


@pytest.mark.parametrize("endpoint_name", list(BY_NAME))
def test_unparseable_bodies_are_refused_with_a_4xx_problem_and_change_nothing(
        client, db, world, endpoint_name):
    endpoint = BY_NAME[endpoint_name]
    refusals = Refusals(db)
    for raw in MALFORMED_JSON:
        refusals.check(f"malformed {raw[:20]!r}", lambda: send(client, world, endpoint, raw=raw),
                       status=400, slug="malformed-json")
    for raw in PATHOLOGICAL_JSON:
        refusals.check(f"pathological {raw[:20]!r}",
                       lambda: send(client, world, endpoint, raw=raw))
    if endpoint.model is not None:
        valid = json.dumps(endpoint.valid_body(world)).encode()
        refusals.check("valid JSON sent as text/plain", lambda: send(
            client, world, endpoint, raw=valid, content_type="text/plain"))
        refusals.check("empty body", lambda: send(client, world, endpoint, raw=b""), status=422)
    refusals.assert_none()


UNKNOWN_IDS = {
    "id": [(999_999, 404), (2**53 + 1, 422), (2**63, 422), (10**30, 422), (0, 422), (-1, 422),
           ("abc", 422), ("1.5", 422), ("%00", 422)],
    "uuid": [(str(uuid.UUID(int=0)), 404), (str(uuid.uuid4()), 404), ("abc", 422),
             ("0" * 37, 422), ("%00" * 12, 422)],
}


@pytest.mark.parametrize("endpoint_name", [e.name for e in ENDPOINTS if e.path_ids])
def test_unknown_ids_in_the_path_are_refused_and_change_nothing(
        client, db, world, endpoint_name):
    endpoint = BY_NAME[endpoint_name]
    refusals = Refusals(db)
    for placeholder, kind in endpoint.path_ids:
        for value, status in UNKNOWN_IDS[kind]:
            refusals.check(f"{placeholder}={value}", lambda: send(
                client, world, endpoint, body=endpoint.valid_body(world),
                path={placeholder: value}), status=status)
    refusals.assert_none()


def test_other_endpoints_refuse_unknown_ids_and_change_nothing(client, db, world):
    refusals = Refusals(db)
    for method, path, status in [
        ("DELETE", "/api/v1/carts/{cart_id}/lines/999999", 404),
        ("DELETE", "/api/v1/carts/{cart_id}/lines/0", 422),
        ("DELETE", "/api/v1/carts/00000000-0000-0000-0000-000000000000/lines/{variant_id}", 404),
        ("DELETE", "/api/v1/admin/tokens/999999", 404),
        ("DELETE", "/api/v1/admin/tokens/abc", 422),
        ("DELETE", "/api/v1/admin/webhooks/999999", 404),
        ("DELETE", "/api/v1/admin/webhooks/9223372036854775808", 422),
        ("GET", "/api/v1/admin/webhooks/999999/deliveries", 404),
        ("GET", "/api/v1/admin/orders/999999", 404),
        ("GET", "/api/v1/admin/orders/0", 422),
        ("GET", "/api/v1/admin/customers/999999", 404),
        ("GET", "/api/v1/admin/customers/-5", 422),
        ("GET", "/api/v1/orders/999999", 404),
        ("GET", "/api/v1/orders/abc", 422),
        ("GET", "/api/v1/carts/00000000-0000-0000-0000-000000000000", 404),
        ("GET", "/api/v1/carts/not-a-uuid", 422),
        ("GET", "/api/v1/products/no-such-product", 404),
        ("GET", "/api/v1/products/" + "x" * 5000, 404),
        # NUL in a lookup: not found on SQLite, refused by PostgreSQL (the DataError net).
        ("GET", "/api/v1/products/a%00b", None),
    ]:
        url = path.format(**vars(world))
        refusals.check(f"{method} {url[:80]}",
                       lambda: client.request(method, url, headers=world.admin), status=status)
    refusals.assert_none()


def test_bad_query_parameters_are_refused_with_422(client, db, world):
    refusals = Refusals(db)
    paging = [{"limit": -1}, {"limit": 0}, {"limit": 10**30}, {"limit": "x"}, {"offset": "x"},
              {"offset": -1}, {"offset": 2**63}, {"limit": "1e3"}, {"limit": ""}]
    cases = [(path, query) for path in ("/api/v1/products", "/api/v1/orders",
                                        "/api/v1/admin/orders", "/api/v1/admin/customers")
             for query in paging]
    cases += [
        ("/api/v1/admin/orders", {"status": "teleported"}),
        ("/api/v1/admin/events", {"after_id": -1}),
        ("/api/v1/admin/events", {"after_id": 2**63}),
        ("/api/v1/admin/events", {"limit": 10**30}),
        ("/api/v1/admin/events", {"type": "x" * 65}),
        ("/api/v1/products", {"family": "x" * 65}),
        ("/api/v1/admin/webhooks/1/deliveries", {"limit": -1}),
    ]
    for path, query in cases:
        refusals.check(f"{path} {query}"[:120],
                       lambda: client.get(path, params=query, headers=world.admin), status=422)
    refusals.assert_none()


def test_an_unknown_route_is_a_404_problem(client):
    problem = assert_problem(client.get("/api/v1/no-such-thing"), 404)

    assert problem["type"].endswith("/not-found")


def test_a_wrong_method_is_a_405_problem_and_changes_nothing(client, db):
    refusals = Refusals(db)
    for method, path in [("DELETE", "/api/v1/checkout"), ("PATCH", "/api/v1/me"),
                         ("PUT", "/api/v1/products"), ("GET", "/api/v1/sessions"),
                         ("POST", "/api/v1/admin/stock")]:
        refusals.check(f"{method} {path}", lambda: client.request(method, path), status=405,
                       slug="method-not-allowed")
    refusals.assert_none()
    assert "allow" in client.delete("/api/v1/checkout").headers


def test_checkout_refuses_a_bad_idempotency_key_and_changes_nothing(client, db, world):
    before = snapshot(db)
    body = json.dumps(checkout_body(world.cart_id)).encode()
    headers = {"content-type": "application/json"}
    for key in ["", "   ", "k" * 256, "tab\tinside"]:
        response = client.post("/api/v1/checkout", content=body,
                               headers={**headers, "Idempotency-Key": key})
        assert_problem(response, 422)
    assert changed_tables(before, snapshot(db)) == []


# --- properties: random JSON never breaks the API ---------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def bodies_near(valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Arbitrary JSON, or the valid body's fields each kept, dropped or replaced at random."""
    field_values = {key: st.just(value) | json_values for key, value in valid.items()}
    near = st.fixed_dictionaries({}, optional=field_values).flatmap(
        lambda d: st.just(d) | st.dictionaries(st.text(max_size=12), json_values, max_size=2)
        .map(lambda extra: {**extra, **d}))
    return json_values | near


PROPERTY = hypothesis_settings(max_examples=60, deadline=None,
                               suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("endpoint_name", ["checkout", "create-product"])
@PROPERTY
@given(data=st.data())
def test_random_json_bodies_are_refused_without_a_500_or_a_change(
        client, db, world, endpoint_name, data):
    endpoint = BY_NAME[endpoint_name]
    valid = endpoint.valid_body(world)
    body = data.draw(bodies_near(valid), label="body")
    assume(body != valid)
    before = snapshot(db)

    response = send(client, world, endpoint, body=body)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response)
        assert changed_tables(before, snapshot(db)) == []
    else:  # random fields can make a valid product (a name, with the slug derived from it)
        assert endpoint_name == "create-product" and response.status_code == 201, response.text


@PROPERTY
@given(quantity=st.integers() | st.floats() | st.text(max_size=20) | st.none())
def test_random_cart_quantities_never_cause_a_500(client, db, world, quantity):
    endpoint = BY_NAME["set-cart-line"]
    before = snapshot(db)

    response = send(client, world, endpoint, body={"quantity": quantity})

    try:
        accepted = LineSet.model_validate({"quantity": quantity}).quantity <= 10
    except ValidationError:
        accepted = False
    if accepted:  # a valid quantity, and in stock
        assert response.status_code == 200, response.text
        return
    assert_problem(response)
    assert changed_tables(before, snapshot(db)) == []


def test_the_sweep_covers_valid_bodies_that_do_succeed(client, db, world):
    """Guards the sweep itself: each valid body is accepted, so a refusal above is caused by
    the one thing each case changed."""
    # Signing up signs the client in as someone else, so it goes last.
    for endpoint in sorted(ENDPOINTS, key=lambda e: e.name == "sign-up"):
        response = send(client, world, endpoint, body=endpoint.valid_body(world))
        assert response.status_code in (200, 201, 202), (endpoint.name, response.text)
