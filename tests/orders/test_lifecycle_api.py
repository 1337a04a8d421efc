"""The lifecycle over HTTP: the admin routes with their scopes, the 409 problem with the
current stage, the PDFs, and the shopper's order (API and page) with its timeline and
tracking."""

from __future__ import annotations

from sqlalchemy import select

from dropline.orders.models import Order, OrderLine
from tests.builders import (
    api_token,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
)
from tests.orders.lifecycle_builders import paid_order


def _order(db, clock, settings, quantity=2):
    make_location(db)
    variant = make_product(db, clock, price=2000, stock=10, name="Fig Leaf")[1]
    return paid_order(db, clock, settings, [(variant, quantity)])


def test_an_operator_walks_an_order_to_delivered_over_the_api(client, db, clock, settings):
    order_id = _order(db, clock, settings)
    fulfil = api_token(db, clock, "orders:fulfil")

    for expected in ("allocated", "picking", "packed"):
        moved = client.post(f"/api/v1/admin/orders/{order_id}/advance", headers=fulfil)
        assert moved.status_code == 200, moved.text
        assert moved.json()["stage"] == expected
    shipped = client.post(f"/api/v1/admin/orders/{order_id}/ship", headers=fulfil,
                          json={"carrier": "manual", "tracking_number": "RM123456785GB"})
    delivered = client.post(f"/api/v1/admin/orders/{order_id}/delivery", headers=fulfil,
                            json={"outcome": "delivered"})

    assert shipped.json()["shipments"][0]["tracking_number"] == "RM123456785GB"
    body = delivered.json()
    assert body["stage"] == "delivered" and body["shipments"][0]["status"] == "delivered"
    assert [entry["label"] for entry in body["timeline"]] == [
        "Order placed", "Payment received", "Being prepared", "Being picked", "Packed",
        "Shipped", "Delivered"]


def test_an_illegal_move_is_a_409_problem_naming_the_current_stage(client, db, clock,
                                                                   settings):
    order_id = _order(db, clock, settings)
    fulfil = api_token(db, clock, "orders:fulfil")

    refused = client.post(f"/api/v1/admin/orders/{order_id}/delivery", headers=fulfil,
                          json={"outcome": "delivered"})

    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["current_stage"] == "paid"
    with db.transaction() as session:
        assert session.get(Order, order_id).stage.value == "paid"


def test_each_route_needs_its_scope(client, db, clock, settings):
    order_id = _order(db, clock, settings)
    reader = api_token(db, clock, "orders:read")

    assert client.post(f"/api/v1/admin/orders/{order_id}/advance",
                       headers=reader).status_code == 403
    assert client.post(f"/api/v1/admin/orders/{order_id}/cancel", json={},
                       headers=api_token(db, clock, "orders:fulfil")).status_code == 403
    with db.transaction() as session:
        assert session.get(Order, order_id).stage.value == "paid"


def test_cancelling_some_units_over_the_api_refunds_them(client, db, clock, settings):
    order_id = _order(db, clock, settings, quantity=3)  # 6000, free delivery
    with db.transaction() as session:
        line_id = session.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id))
    refund = api_token(db, clock, "orders:refund")

    cancelled = client.post(f"/api/v1/admin/orders/{order_id}/cancel", headers={
        **refund, "Idempotency-Key": "cancel-one"}, json={"lines": [{"line_id": line_id,
                                                                     "quantity": 1}]})
    replayed = client.post(f"/api/v1/admin/orders/{order_id}/cancel", headers={
        **refund, "Idempotency-Key": "cancel-one"}, json={"lines": [{"line_id": line_id,
                                                                     "quantity": 1}]})

    assert cancelled.status_code == 200, cancelled.text
    assert replayed.json() == cancelled.json()
    body = cancelled.json()
    assert (body["refunded_amount"], body["lines"][0]["cancelled_quantity"]) == (2000, 1)
    assert body["stage"] == "paid"


def test_the_pick_list_and_the_packing_slip_and_label_come_from_the_api(client, db, clock,
                                                                        settings):
    order_id = _order(db, clock, settings)
    fulfil = api_token(db, clock, "orders:fulfil")
    allocated = client.post(f"/api/v1/admin/orders/{order_id}/allocate", headers=fulfil,
                            json={}).json()
    shipment_id = allocated["shipments"][0]["id"]

    picks = client.get("/api/v1/admin/pick-lists/central", headers=fulfil,
                       params={"day": "2026-03-02"})
    slip = client.get(f"/api/v1/admin/shipments/{shipment_id}/packing-slip.pdf", headers=fulfil)
    label = client.get(f"/api/v1/admin/shipments/{shipment_id}/label.pdf", headers=fulfil)

    assert picks.json() == [{"sku": picks.json()[0]["sku"], "product_name": "Fig Leaf",
                             "variant_name": "50 ml", "quantity": 2, "orders": [order_id]}]
    assert slip.headers["content-type"] == "application/pdf" and slip.content[:4] == b"%PDF"
    assert label.status_code == 200 and b"288 432" in label.content
    assert client.get("/api/v1/admin/pick-lists/nowhere", headers=fulfil).status_code == 404


def test_the_shopper_sees_the_timeline_and_tracking_on_the_order_page(client, db, clock,
                                                                     settings):
    make_location(db)
    variant = make_product(db, clock, price=2000, stock=10)[1]
    sign_up(client)
    placed = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant)),
                         headers={"Idempotency-Key": "page-1"})
    order_id = placed.json()["id"]
    fulfil = api_token(db, clock, "orders:fulfil")
    for _ in range(3):
        client.post(f"/api/v1/admin/orders/{order_id}/advance", headers=fulfil)
    client.post(f"/api/v1/admin/orders/{order_id}/ship", headers=fulfil,
                json={"tracking_number": "RM123456785GB"})

    page = client.get(f"/orders/{order_id}")
    mine = client.get(f"/api/v1/orders/{order_id}").json()

    assert page.status_code == 200
    assert "RM123456785GB" in page.text and "Shipped" in page.text
    assert 'data-stage="shipped"' in page.text
    assert mine["stage"] == "shipped" and mine["timeline"][-1]["label"] == "Shipped"
