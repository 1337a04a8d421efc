"""Every stored order reconciles with its lines, and the database refuses one that would not."""

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dropline.orders.models import Order, OrderLine
from dropline.orders.rules import reconciles
from tests.builders import cart_with, checkout_body, make_location, make_product, sign_up


def test_paid_orders_reconcile_with_their_lines_and_refuse_tampering(client, db, clock):
    make_location(db)
    _, a = make_product(db, clock, price=1999, stock=9)
    _, b = make_product(db, clock, price=3333, stock=9)
    sign_up(client)
    cart = cart_with(client, a, 3)
    assert client.put(f"/api/v1/carts/{cart}/lines/{b}", json={"quantity": 2}).status_code == 200
    response = client.post("/api/v1/checkout", json=checkout_body(cart),
                           headers={"Idempotency-Key": "recon-1"})
    assert response.status_code == 201

    with db.transaction() as session:
        order = session.scalar(select(Order))
        lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).all()
        assert order.subtotal_amount == 3 * 1999 + 2 * 3333
        assert reconciles(subtotal_amount=order.subtotal_amount,
                          discount_amount=order.discount_amount,
                          shipping_amount=order.shipping_amount, total_amount=order.total_amount,
                          line_totals=[(l.unit_price_amount, l.quantity, l.line_total_amount)
                                       for l in lines])

    with pytest.raises(IntegrityError), db.transaction() as session:
        session.scalar(select(Order)).total_amount += 1
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.scalar(select(OrderLine)).line_total_amount += 1
