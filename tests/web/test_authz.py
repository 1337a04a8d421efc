"""Who may call what: admin endpoints need a live token holding their scope; customer endpoints
need a session; one customer never sees another's orders or carts (404, so ids cannot be
probed). Every refusal is problem+json and changes nothing."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from dropline.admin.models import ApiToken
from dropline.admin.service import SCOPES
from dropline.carts.models import Cart
from dropline.config import Settings
from dropline.customers.models import CustomerSession
from dropline.security import token_digest
from dropline.web.app import create_app
from tests.builders import (
    PASSWORD,
    api_token,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
)
from tests.web.support import assert_problem, changed_tables, second_client, snapshot

COOKIE = "dl_session"


def admin_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every admin endpoint, read from the app, so a new one is covered.
    Read from the OpenAPI document: this FastAPI version keeps included routers unflattened
    in ``app.routes``."""
    return sorted((method.upper(), path) for path, operations in app.openapi()["paths"].items()
                  if path.startswith("/api/v1/admin") for method in operations)


ADMIN_ROUTES = admin_routes(create_app(
    Settings(database={"url": "sqlite://"}, web={"run_scheduler": False}), run_worker=False))


def concrete(path: str) -> str:
    """Path parameters become an id that names nothing, so an allowed call is a harmless 404."""
    return re.sub(r"\{[^}]+\}", "999999", path)


def test_the_admin_routes_are_discovered(client):
    assert admin_routes(client.app) == ADMIN_ROUTES
    assert len(ADMIN_ROUTES) >= 15
    assert ("POST", "/api/v1/admin/orders/{order_id}/refunds") in ADMIN_ROUTES


def scopeless_token(db, clock) -> dict[str, str]:
    """A live token holding no scope at all (the API never issues one): whatever it calls is
    refused, and the refusal names the scope the endpoint needs."""
    secret = f"dl_scopeless_{uuid.uuid4().hex}"
    with db.transaction() as session:
        session.add(ApiToken(name="scopeless", prefix=uuid.uuid4().hex[:8],
                             token_hash=token_digest(secret), scopes=[], created_at=clock.now()))
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES,
                         ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
def test_admin_endpoints_refuse_anonymous_callers_and_tokens_without_their_scope(
        client, db, clock, method, path):
    url = concrete(path)
    needed = assert_problem(client.request(method, url, headers=scopeless_token(db, clock)),
                            403)["scope"]
    assert needed in SCOPES
    single = {scope: api_token(db, clock, scope) for scope in SCOPES}
    all_but = api_token(db, clock, *(scope for scope in SCOPES if scope != needed))
    before = snapshot(db)

    for headers in ({}, {"Authorization": "Bearer dl_not_a_real_token"},
                    {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer "}):
        response = client.request(method, url, headers=headers)
        problem = assert_problem(response, 401)
        assert problem["type"].endswith("/not-authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
    # Every other scope, alone or all together, is refused.
    for headers in [h for scope, h in single.items() if scope != needed] + [all_but]:
        problem = assert_problem(client.request(method, url, headers=headers), 403)
        assert problem["type"].endswith("/permission-denied")
        assert problem["scope"] == needed
    assert changed_tables(before, snapshot(db)) == []

    # The needed scope opens it (the fake ids in the path may then be a 404, a missing body 422).
    assert client.request(method, url, headers=single[needed]).status_code not in (401, 403)


@pytest.mark.parametrize(("method", "path", "scope", "body", "status"), [
    ("GET", "/api/v1/admin/orders", "orders:read", None, 200),
    ("GET", "/api/v1/admin/customers", "customers:read", None, 200),
    ("GET", "/api/v1/admin/events", "events:read", None, 200),
    ("GET", "/api/v1/admin/webhooks", "webhooks:manage", None, 200),
    ("GET", "/api/v1/admin/tokens", "tokens:manage", None, 200),
    ("GET", "/api/v1/admin/scopes", "tokens:manage", None, 200),
    ("GET", "/api/v1/admin/orders", "*", None, 200),
    ("POST", "/api/v1/admin/products", "catalog:write",
     {"name": "Oud", "family": "attar", "variants": [
         {"sku": "OUD-1", "name": "3 ml", "price_amount": 1800, "currency": "GBP"}]}, 201),
])
def test_a_token_with_the_right_scope_is_let_through(client, db, clock, method, path, scope,
                                                      body, status):
    response = client.request(method, path, json=body, headers=api_token(db, clock, scope))

    assert response.status_code == status, response.text


def _issue(client, db, clock, **fields) -> dict:
    manager = api_token(db, clock, "tokens:manage", "orders:read")  # grants only what it holds
    response = client.post("/api/v1/admin/tokens", headers=manager,
                           json={"name": "reporting", "scopes": ["orders:read"], **fields})
    assert response.status_code == 201, response.text
    return {"id": response.json()["id"], "manager": manager,
            "headers": {"Authorization": f"Bearer {response.json()['token']}"}}


def test_a_revoked_token_is_refused_with_401(client, db, clock):
    token = _issue(client, db, clock)
    assert client.get("/api/v1/admin/orders", headers=token["headers"]).status_code == 200

    revoked = client.delete(f"/api/v1/admin/tokens/{token['id']}", headers=token["manager"])

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    problem = assert_problem(client.get("/api/v1/admin/orders", headers=token["headers"]), 401)
    assert problem["type"].endswith("/not-authenticated")


def test_an_expired_token_is_refused_with_401(client, db, clock):
    token = _issue(client, db, clock, expires_at="2026-03-02T11:00:00Z")  # the clock: 10:00
    assert client.get("/api/v1/admin/orders", headers=token["headers"]).status_code == 200

    clock.advance(hours=1)  # expiry is exclusive: at 11:00 the token is dead

    assert_problem(client.get("/api/v1/admin/orders", headers=token["headers"]), 401)


# --- customers --------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/me"), ("GET", "/api/v1/orders"), ("GET", "/api/v1/orders/1"),
    ("POST", "/api/v1/checkout"),
])
@pytest.mark.parametrize("cookie", [None, "forged-session-token", "x" * 5000],
                         ids=["no-cookie", "forged", "overlong"])
def test_customer_endpoints_refuse_anonymous_callers_with_401(client, db, method, path, cookie):
    if cookie is not None:
        client.cookies.set(COOKIE, cookie)
    before = snapshot(db)

    response = client.request(method, path, json=checkout_body(str(uuid.uuid4())),
                              headers={"Idempotency-Key": "anonymous-1"})

    problem = assert_problem(response, 401)
    assert problem["type"].endswith("/not-authenticated")
    assert changed_tables(before, snapshot(db)) == []


@pytest.fixture
def two_shoppers(client, db, clock):
    """Customer A (on ``client``) with a paid order and an open cart; customer B elsewhere."""
    make_location(db)
    _, variant = make_product(db, clock, stock=10)
    a = sign_up(client)
    paid = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant)),
                       headers={"Idempotency-Key": "a-1"})
    assert paid.status_code == 201, paid.text
    b_client = second_client(client)
    b = sign_up(b_client)
    return {"a": a, "b": b, "b_client": b_client, "variant": variant,
            "order": paid.json()["id"], "cart": cart_with(client, variant, quantity=2)}


def test_a_customer_cannot_read_another_customers_order_and_learns_nothing(client, two_shoppers):
    b = two_shoppers["b_client"]
    order = two_shoppers["order"]
    assert client.get(f"/api/v1/orders/{order}").status_code == 200  # A sees it

    theirs = b.get(f"/api/v1/orders/{order}")
    nobodys = b.get("/api/v1/orders/999999")

    problem = assert_problem(theirs, 404)  # not 403: a 403 would confirm the id exists
    other = assert_problem(nobodys, 404)
    assert (problem["type"], problem["title"]) == (other["type"], other["title"])
    assert problem["detail"] == f"order {order} not found"
    assert b.get("/api/v1/orders").json() == []


def test_a_customer_cannot_read_or_change_another_customers_cart(client, db, two_shoppers):
    b = two_shoppers["b_client"]
    cart, variant = two_shoppers["cart"], two_shoppers["variant"]
    before = snapshot(db)

    assert_problem(b.get(f"/api/v1/carts/{cart}"), 404)
    assert_problem(b.put(f"/api/v1/carts/{cart}/lines/{variant}", json={"quantity": 5}), 404)
    assert_problem(b.delete(f"/api/v1/carts/{cart}/lines/{variant}"), 404)
    assert changed_tables(before, snapshot(db)) == []

    checkout = b.post("/api/v1/checkout", json=checkout_body(cart),
                      headers={"Idempotency-Key": "b-takes-a"})

    assert_problem(checkout, 404)
    # Only B's key is recorded (refusals are stored so a retry replays them); no order, no
    # payment, no stock moved, A's cart untouched.
    assert changed_tables(before, snapshot(db)) == ["idempotency_records"]
    assert client.get(f"/api/v1/carts/{cart}").json()["lines"][0]["quantity"] == 2


def test_a_guest_cart_is_claimed_by_the_first_signed_in_customer(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=10)
    guest = second_client(client)
    cart = cart_with(guest, variant)  # no session: a guest cart
    with db.transaction() as session:
        assert session.get(Cart, cart).customer_id is None

    customer = sign_up(guest)  # the same browser signs up, then uses the cart
    assert guest.get(f"/api/v1/carts/{cart}").status_code == 200

    with db.transaction() as session:
        assert session.get(Cart, cart).customer_id == customer["id"]
    sign_up(client)  # someone else, and an anonymous browser, can no longer reach it
    assert_problem(client.get(f"/api/v1/carts/{cart}"), 404)
    assert_problem(second_client(client).get(f"/api/v1/carts/{cart}"), 404)
    assert guest.put(f"/api/v1/carts/{cart}/lines/{variant}",
                     json={"quantity": 3}).status_code == 200


@pytest.mark.parametrize("email_of", [lambda me: me["email"], lambda me: "ghost@example.com"],
                         ids=["wrong-password", "unknown-email"])
def test_a_failed_sign_in_is_401_and_sets_no_cookie(client, db, email_of):
    me = sign_up(second_client(client))
    before = snapshot(db)

    response = client.post("/api/v1/sessions",
                           json={"email": email_of(me), "password": PASSWORD + "!"})

    problem = assert_problem(response, 401)
    assert problem["detail"] == "wrong email or password"  # the same for both: no enumeration
    assert "set-cookie" not in response.headers
    assert COOKIE not in client.cookies
    assert changed_tables(before, snapshot(db)) == []


def test_signing_out_revokes_the_session_on_the_server(client, db, clock):
    sign_up(client)
    token = client.cookies[COOKIE]
    assert client.get("/api/v1/me").status_code == 200

    response = client.delete("/api/v1/sessions/current")

    assert response.status_code == 204
    assert f'{COOKIE}=""' in response.headers["set-cookie"]  # the browser forgets it...
    replay = second_client(client)
    replay.cookies.set(COOKIE, token)  # ...and a copy of the old cookie is worthless
    problem = assert_problem(replay.get("/api/v1/me"), 401)
    assert problem["type"].endswith("/not-authenticated")
    with db.transaction() as session:
        assert session.scalar(select(CustomerSession.revoked_at)) == clock.now()


def test_a_session_expires(client, clock, settings):
    sign_up(client)
    clock.advance(days=settings.web.session_days)

    assert_problem(client.get("/api/v1/me"), 401)


def test_signing_in_again_works_after_signing_out(client):
    me = sign_up(client)
    client.delete("/api/v1/sessions/current")

    response = client.post("/api/v1/sessions", json={"email": me["email"], "password": PASSWORD})

    assert response.status_code == 200
    assert client.get("/api/v1/me").json()["id"] == me["id"]
