"""Builders for the risk tests: a paid order through the real checkout API, and the admin
headers that act on returns."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from dropline.catalog.models import ConditionGrade
from dropline.clock import Clock
from dropline.db import Database
from tests.builders import (
    GOOD_PM,
    api_token,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
)

RETURNS = ("returns:manage", "risk:review", "audit:read", "orders:read")


def shop(db: Database, clock: Clock, *, price: int = 6000, grade: ConditionGrade =
         ConditionGrade.new, family: str = "candles", stock: int = 20) -> dict[str, int]:
    """A central warehouse and one product; returns ids."""
    make_location(db)
    disclosure = "" if grade is ConditionGrade.new else "Restored; faint scuff on the base."
    product_id, variant_id = make_product(db, clock, price=price, grade=grade, family=family,
                                          disclosure=disclosure, stock=stock)
    return {"product_id": product_id, "variant_id": variant_id}


def buy(client: TestClient, variant_id: int, quantity: int = 1, *, email: str | None = None,
        card: str = GOOD_PM, sign: bool = True) -> dict[str, Any]:
    """Signs a shopper up (unless ``sign`` is False) and pays for ``quantity`` units."""
    if sign:
        sign_up(client, email=email)
    cart_id = cart_with(client, variant_id, quantity)
    response = client.post("/api/v1/checkout", json=checkout_body(cart_id, card),
                           headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def admin_headers(db: Database, clock: Clock) -> dict[str, str]:
    return api_token(db, clock, *RETURNS)


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def ask_return(client: TestClient, order: dict[str, Any], *, reason: str = "changed-mind",
               quantity: int = 1, device: str | None = None) -> dict[str, Any]:
    headers = {"X-Device-Id": device} if device else {}
    response = client.post(f"/api/v1/orders/{order['id']}/returns", headers=headers, json={
        "variant_id": order["lines"][0]["variant_id"], "quantity": quantity, "reason": reason})
    assert response.status_code == 201, response.text
    return response.json()


def receive(client: TestClient, headers: dict[str, str], return_id: int, *,
            grade: str = "new", serial: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"grade": grade, "location_code": "central"}
    if serial:
        body["serial"] = serial
    response = client.post(f"/api/v1/admin/returns/{return_id}/receive", json=body,
                           headers={**headers, **key()})
    assert response.status_code == 200, response.text
    return response.json()
