"""Card testing (issue 20): declines are counted per customer, per client IP and per card (the
provider's fingerprint); once one reaches its limit checkout cools down (429, Retry-After),
and an alert opens in the console's risk page for a person to review. The local provider's
tokenising endpoint is throttled per IP.

The limiter's clock is pinned inside one window, so no test depends on where in a window it
runs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dropline.adapters.payments import DECLINED
from dropline.clock import Clock
from dropline.db import Database
from dropline.orders.models import Order
from dropline.ratelimit import MemoryRateLimiter
from dropline.risk.models import DeclineAlert, DeclineAlertKind
from tests.builders import (
    GOOD_CARD,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_in_console,
    sign_up,
    tokenise,
)
from tests.web.support import assert_problem, second_client


@pytest.fixture
def pinned(client: TestClient) -> TestClient:
    services = client.app.state.services  # type: ignore[attr-defined]
    services.limiter = MemoryRateLimiter(now=lambda: 6_000_030.0)
    return client


def _limits(client: TestClient, **values: int) -> None:
    throttle = client.app.state.services.settings.throttle  # type: ignore[attr-defined]
    for name, value in values.items():
        setattr(throttle, name, value)


def _checkout(client: TestClient, variant_id: int, payment_method: str, key: str) -> Any:
    return client.post("/api/v1/checkout", headers={"Idempotency-Key": key},
                       json=checkout_body(cart_with(client, variant_id), payment_method))


def _alerts(db: Database) -> list[tuple[DeclineAlertKind, int]]:
    with db.transaction() as session:
        return [(a.kind, a.bursts) for a in session.scalars(
            select(DeclineAlert).where(DeclineAlert.reviewed_at.is_(None))
            .order_by(DeclineAlert.id))]


def _orders(db: Database) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Order)) or 0)


def test_one_card_declined_across_accounts_cools_down_and_opens_a_card_alert(
        pinned: TestClient, db: Database, clock: Clock) -> None:
    _limits(pinned, declines_per_customer=100, declines_per_ip=100, declines_per_card=3)
    make_location(db)
    _, variant_id = make_product(db, clock, stock=50)
    shoppers = [second_client(pinned) for _ in range(4)]
    for n, shopper in enumerate(shoppers[:3]):  # three accounts, one stolen card each time
        sign_up(shopper)
        card = tokenise(shopper, number=DECLINED)  # a new reference, the same fingerprint
        assert _checkout(shopper, variant_id, card, f"try-{n}").status_code == 402
    assert _alerts(db) == [(DeclineAlertKind.card, 1)]
    before = _orders(db)

    fourth = shoppers[3]
    sign_up(fourth)
    refused = _checkout(fourth, variant_id, tokenise(fourth, number=DECLINED), "try-3")

    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 900
    assert _orders(db) == before  # refused before any order row is written
    other_card = tokenise(fourth, GOOD_CARD)
    assert _checkout(fourth, variant_id, other_card, "good-card").status_code == 201


def test_the_form_checkout_cools_down_for_the_card_too(
        pinned: TestClient, db: Database, clock: Clock) -> None:
    _limits(pinned, declines_per_customer=100, declines_per_ip=100, declines_per_card=1)
    make_location(db)
    _, variant_id = make_product(db, clock, stock=50)
    sign_up(pinned)
    card = tokenise(pinned, number=DECLINED)
    assert _checkout(pinned, variant_id, card, "try-0").status_code == 402
    added = pinned.post("/cart/lines", data={"variant_id": str(variant_id), "quantity": "1"},
                        headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert added.status_code == 303

    form = pinned.post("/checkout", data={
        "key": "form-key", "name": "Ada", "line1": "1 Fournier St", "city": "London",
        "postcode": "E1 6QE", "payment_method": card}, follow_redirects=False)

    assert form.status_code == 429
    assert "Too many declined payments with this card" in form.text
    assert 1 <= int(form.headers["Retry-After"]) <= 900


def test_customer_and_ip_limits_open_their_own_alerts_once_per_subject(
        pinned: TestClient, db: Database, clock: Clock) -> None:
    _limits(pinned, declines_per_customer=2, declines_per_ip=3, declines_per_card=100)
    make_location(db)
    _, variant_id = make_product(db, clock, stock=50)
    first, second = second_client(pinned), second_client(pinned)
    sign_up(first)
    sign_up(second)
    for n in range(2):
        card = tokenise(first, number=DECLINED)
        assert _checkout(first, variant_id, card, f"a-{n}").status_code == 402
    assert _alerts(db) == [(DeclineAlertKind.customer, 1)]
    assert_problem(_checkout(first, variant_id, tokenise(first, GOOD_CARD), "a-2"), 429)

    card = tokenise(second, number=DECLINED)
    assert _checkout(second, variant_id, card, "b-0").status_code == 402  # the IP's third

    assert _alerts(db) == [(DeclineAlertKind.customer, 1), (DeclineAlertKind.ip, 1)]
    assert_problem(_checkout(second, variant_id, tokenise(second, GOOD_CARD), "b-1"), 429)


def test_an_operator_sees_the_alert_on_the_risk_page_and_marks_it_reviewed(
        pinned: TestClient, db: Database, clock: Clock) -> None:
    _limits(pinned, declines_per_customer=1)
    make_location(db)
    _, variant_id = make_product(db, clock, stock=50)
    shopper = second_client(pinned)
    customer = sign_up(shopper)
    assert _checkout(shopper, variant_id, tokenise(shopper, number=DECLINED), "x").status_code \
        == 402
    sign_in_console(pinned, db, clock)

    page = pinned.get("/admin/risk")
    with db.transaction() as session:
        alert = session.scalars(select(DeclineAlert)).one()
    assert page.status_code == 200
    assert f'id="decline-alert-{alert.id}"' in page.text
    assert f"customer {customer['id']}" in page.text

    done = pinned.post(f"/admin/risk/decline-alerts/{alert.id}/reviewed",
                       data={"note": "test cards, account blocked"}, follow_redirects=False)
    assert done.status_code == 303
    with db.transaction() as session:
        reviewed = session.get(DeclineAlert, alert.id)
        assert reviewed is not None and reviewed.reviewed_at is not None
        assert reviewed.note == "test cards, account blocked"
    assert f'id="decline-alert-{alert.id}"' not in pinned.get("/admin/risk").text
    again = pinned.post(f"/admin/risk/decline-alerts/{alert.id}/reviewed", data={},
                        follow_redirects=False)
    assert "already+reviewed" in again.headers["location"] or \
        "already%20reviewed" in again.headers["location"]


def test_the_local_tokenising_endpoint_is_throttled_per_ip(pinned: TestClient) -> None:
    _limits(pinned, card_tokens_per_ip_per_minute=3)
    for _ in range(3):
        tokenise(pinned)

    refused = pinned.post("/pay/local/tokens", json=GOOD_CARD)

    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "4242" not in refused.text  # the refusal echoes nothing of the card
