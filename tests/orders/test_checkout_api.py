"""Checkout through the HTTP API: idempotency, totals, stock, payment outcomes."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from dropline.adapters.payments import DECLINED
from dropline.locations.models import StockLevel
from dropline.orders.models import Order
from dropline.payments.models import LocalProviderCharge, Payment
from tests.builders import (
    TRANSIENT_PM,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
    tokenise,
)


def _counts(db):
    with db.transaction() as session:
        return (session.scalar(select(func.count()).select_from(Order)),
                session.scalar(select(func.count()).select_from(Payment)),
                session.scalar(select(func.count()).select_from(LocalProviderCharge)))


def _stock(db, variant_id):
    with db.transaction() as session:
        return session.scalar(select(StockLevel.on_hand).where(StockLevel.variant_id == variant_id))


def test_checkout_creates_one_paid_order_whose_totals_reconcile(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=2250, stock=5)
    sign_up(client)
    cart = cart_with(client, variant, quantity=2)

    response = client.post("/api/v1/checkout", json=checkout_body(cart),
                           headers={"Idempotency-Key": str(uuid.uuid4())})

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "paid"
    assert order["subtotal_amount"] == 4500
    assert order["shipping_amount"] == 395  # under the 5000 free-shipping threshold
    assert order["total_amount"] == 4895
    assert sum(line["line_total_amount"] for line in order["lines"]) == order["subtotal_amount"]
    assert order["payments"][0]["status"] == "succeeded"
    assert order["payments"][0]["amount"] == order["total_amount"]
    assert _stock(db, variant) == 3


def test_same_key_and_body_replays_the_stored_response_without_a_second_charge(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    sign_up(client)
    body = checkout_body(cart_with(client, variant))
    key = {"Idempotency-Key": "order-attempt-1"}

    first = client.post("/api/v1/checkout", json=body, headers=key)
    second = client.post("/api/v1/checkout", json=body, headers=key)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _counts(db) == (1, 1, 1)
    assert _stock(db, variant) == 4


def test_same_key_with_a_different_body_is_refused_with_422_and_changes_nothing(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    sign_up(client)
    cart = cart_with(client, variant)
    key = {"Idempotency-Key": "order-attempt-2"}
    assert client.post("/api/v1/checkout", json=checkout_body(cart), headers=key).status_code == 201

    other = checkout_body(cart)
    other["shipping_address"] = {**other["shipping_address"], "line1": "2 Elder St"}
    response = client.post("/api/v1/checkout", json=other, headers=key)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/idempotency-key-reused")
    assert _counts(db) == (1, 1, 1)


def test_keys_are_scoped_per_customer(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    key = {"Idempotency-Key": "same-key"}
    sign_up(client)
    first = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant)),
                        headers=key)
    sign_up(client)  # a second customer, same key
    second = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant)),
                         headers=key)

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_checkout_without_an_idempotency_key_is_refused(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    sign_up(client)
    response = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant)))

    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert _counts(db) == (0, 0, 0)


def test_declined_card_keeps_a_failed_order_returns_stock_and_replays_the_402(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    sign_up(client)
    cart = cart_with(client, variant, quantity=2)
    body = checkout_body(cart, tokenise(client, number=DECLINED))
    key = {"Idempotency-Key": "declined-1"}

    first = client.post("/api/v1/checkout", json=body, headers=key)
    replay = client.post("/api/v1/checkout", json=body, headers=key)

    assert first.status_code == 402
    assert first.json()["decline_code"] == "card_declined"
    assert replay.status_code == 402 and replay.json() == first.json()
    assert _stock(db, variant) == 5
    with db.transaction() as session:
        assert session.scalar(select(Order.status)).value == "payment-failed"
    # The basket is open again: another card, a new key, succeeds.
    retry = client.post("/api/v1/checkout", json=checkout_body(cart),
                        headers={"Idempotency-Key": "declined-1-retry"})
    assert retry.status_code == 201, retry.text
    assert _stock(db, variant) == 3


def test_transient_provider_failure_is_retried_and_charges_once(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=5)
    sign_up(client)
    body = checkout_body(cart_with(client, variant), TRANSIENT_PM)

    response = client.post("/api/v1/checkout", json=body, headers={"Idempotency-Key": "t-1"})

    assert response.status_code == 201, response.text
    assert _counts(db) == (1, 1, 1)


def test_not_enough_stock_is_409_and_nothing_is_written(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=2)
    sign_up(client)
    cart = cart_with(client, variant, quantity=2)
    # Someone else buys one unit meanwhile.
    with db.transaction() as session:
        from dropline.catalog.service import take_stock

        location_id = session.scalar(select(StockLevel.location_id))
        assert take_stock(session, location_id=location_id, variant_id=variant, quantity=1)

    response = client.post("/api/v1/checkout", json=checkout_body(cart),
                           headers={"Idempotency-Key": "oos-1"})

    assert response.status_code == 409
    assert response.json()["type"].endswith("/out-of-stock")
    assert _counts(db) == (0, 0, 0)
    assert _stock(db, variant) == 1
