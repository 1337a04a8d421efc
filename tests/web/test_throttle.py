"""Throttles (issue 20): password guessing on every sign-in, sign-up, and card testing at
checkout are answered 429 with Retry-After, by the app's one rate limiter (``web.throttle``).

The limiter's clock is pinned inside one window, so no test depends on where in a minute it
runs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dropline.clock import Clock
from dropline.db import Database
from dropline.orders.models import Order
from dropline.ratelimit import MemoryRateLimiter
from tests.builders import (
    DECLINED_PM,
    GOOD_PM,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
)
from tests.web.support import assert_problem

DECLINED_CARD = DECLINED_PM


@pytest.fixture
def pinned(client: TestClient) -> TestClient:
    client.app.state.services.limiter = MemoryRateLimiter(now=lambda: 6_000_030.0)  # type: ignore[attr-defined]
    return client


def _api_sign_in(client: TestClient, email: str) -> Any:
    return client.post("/api/v1/sessions", json={"email": email, "password": "wrong-guess"})


def _form_sign_in(path: str) -> Any:
    def attempt(client: TestClient, email: str) -> Any:
        return client.post(path, data={"email": email, "password": "wrong-guess"},
                           follow_redirects=False)
    return attempt


@pytest.mark.parametrize("attempt", [
    _api_sign_in, _form_sign_in("/sign-in"), _form_sign_in("/membership/sign-in"),
    _form_sign_in("/admin/login")], ids=["api", "storefront", "member-portal", "console"])
def test_the_51st_wrong_password_in_a_minute_is_throttled(pinned: TestClient, attempt: Any
                                                          ) -> None:
    sign_up(pinned, email="target@example.com")
    for _ in range(50):
        assert attempt(pinned, "target@example.com").status_code in (401, 403)
    refused = attempt(pinned, "Target@Example.com")  # the account, however it is spelled
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    if refused.headers["content-type"].startswith("application/problem+json"):
        assert_problem(refused, 429)
    else:
        assert "Too many sign-in attempts" in refused.text
    # another account from another network is not held up by it
    other = attempt(pinned, "someone-else@example.com")
    assert other.status_code in (401, 403)


def test_sign_in_is_throttled_per_ip_across_accounts(pinned: TestClient) -> None:
    pinned.app.state.services.settings.throttle.sign_in_per_ip_per_minute = 5  # type: ignore[attr-defined]
    for n in range(5):
        assert _api_sign_in(pinned, f"spray-{n}@example.com").status_code == 401
    response = _api_sign_in(pinned, "spray-6@example.com")
    assert_problem(response, 429)
    assert "Retry-After" in response.headers


def test_sign_up_is_throttled_per_ip(pinned: TestClient) -> None:
    pinned.app.state.services.settings.throttle.sign_up_per_ip_per_minute = 3  # type: ignore[attr-defined]
    for _ in range(3):
        sign_up(pinned)
    response = pinned.post("/api/v1/customers", json={"email": "fourth@example.com",
                                                      "password": "correct horse battery"})
    assert_problem(response, 429)


def _orders(db: Database) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Order)) or 0)


def test_declines_then_a_cool_down_before_the_next_checkout(
        pinned: TestClient, db: Database, clock: Clock) -> None:
    make_location(db)
    _, variant_id = make_product(db, clock, stock=50)
    sign_up(pinned)
    limit = pinned.app.state.services.settings.throttle.declines_per_customer  # type: ignore[attr-defined]
    for n in range(limit):
        response = pinned.post("/api/v1/checkout", headers={"Idempotency-Key": f"try-{n}"},
                               json=checkout_body(cart_with(pinned, variant_id), DECLINED_CARD))
        assert response.status_code == 402, response.text
    before = _orders(db)

    cart_id = cart_with(pinned, variant_id)
    response = pinned.post("/api/v1/checkout", headers={"Idempotency-Key": "good-card"},
                           json=checkout_body(cart_id))
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    form = pinned.post("/checkout", data={
        "key": "form-key", "name": "Ada", "line1": "1 Fournier St", "city": "London",
        "postcode": "E1 6QE", "payment_method": GOOD_PM}, follow_redirects=False)
    assert form.status_code == 429
    assert "Too many declined payments" in form.text
    assert _orders(db) == before  # the cool-down leaves no order row
