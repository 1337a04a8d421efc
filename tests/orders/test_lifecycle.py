"""The order lifecycle on a real database: stage moves, cancellations (whole and partial) with
their refunds and stock, address changes, failed deliveries; and the race of two
cancellations, which on PostgreSQL interleave for real."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.audit.models import AuditLog
from dropline.errors import DomainError
from dropline.events.models import DomainEvent
from dropline.locations.models import StockLevel
from dropline.orders import flows, lifecycle
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import OrderStage, StageConflict
from dropline.payments.models import LocalProviderCharge, Refund
from tests.builders import CREDIT_NOTES, checkout_policy, make_location, make_product
from tests.orders.lifecycle_builders import paid_order
from tests.orders.test_races import race


def _move(db, clock, order_id, *actions):
    with db.transaction() as session:
        order = session.get(Order, order_id)
        for action in actions:
            lifecycle.move_stage(session, clock=clock, order=order, action=action)


def _cancel(db, clock, order_id, lines=None, key=None):
    return flows.cancel_order(db, clock=clock, provider=LocalCardProvider(db.sessions, clock),
                              policy=checkout_policy(), credit_notes=CREDIT_NOTES,
                              order_id=order_id, reason="changed mind",
                              actor="test", lines=lines, idempotency_key=key)


def _stock(db, variant_id):
    with db.transaction() as session:
        return session.scalar(select(StockLevel.on_hand)
                              .where(StockLevel.variant_id == variant_id))


def _events(db, order_id):
    with db.transaction() as session:
        return list(session.scalars(select(DomainEvent.type).where(
            DomainEvent.subject_type == "order", DomainEvent.subject_id == str(order_id))
            .order_by(DomainEvent.id)))


@pytest.fixture
def variant(db, clock):
    make_location(db)
    return make_product(db, clock, price=2000, stock=10)[1]


def test_an_order_walks_the_whole_lifecycle_with_an_event_and_an_audit_row_per_move(
        db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 1)])

    _move(db, clock, order_id, "allocated", "picking", "packed", "shipped", "delivered")

    assert _events(db, order_id)[-5:] == ["order.allocated", "order.picking", "order.packed",
                                          "order.shipped", "order.delivered"]
    with db.transaction() as session:
        assert session.get(Order, order_id).stage is OrderStage.delivered
        stage_changes = [row.changes["stage"] for row in session.scalars(
            select(AuditLog).where(AuditLog.entity == "orders",
                                   AuditLog.entity_id == str(order_id)).order_by(AuditLog.id))
            if "stage" in row.changes]
    assert stage_changes == [[None, "paid"], ["paid", "allocated"], ["allocated", "picking"],
                             ["picking", "packed"], ["packed", "shipped"],
                             ["shipped", "delivered"]]


def test_an_illegal_move_is_refused_with_the_current_stage_and_changes_nothing(
        db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 1)])
    before = _events(db, order_id)

    with pytest.raises(StageConflict) as refused:
        _move(db, clock, order_id, "shipped")

    assert refused.value.extensions["current_stage"] == "paid"
    assert _events(db, order_id) == before


def test_a_failed_delivery_is_reattempted_or_returned_to_sender(db, clock, settings, variant):
    first = paid_order(db, clock, settings, [(variant, 1)])
    second = paid_order(db, clock, settings, [(variant, 1)])
    _move(db, clock, first, "allocated", "picking", "packed", "shipped", "delivery_failed",
          "shipped", "delivered")
    _move(db, clock, second, "allocated", "picking", "packed", "shipped", "delivery_failed",
          "returned")
    with db.transaction() as session:
        assert session.get(Order, first).stage is OrderStage.delivered
        assert session.get(Order, second).stage is OrderStage.returned


def test_cancelling_a_paid_order_returns_its_units_and_refunds_everything(
        db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 2)])  # 4000 + 395 delivery
    _move(db, clock, order_id, "allocated", "picking")

    cancelled = _cancel(db, clock, order_id)

    assert cancelled.refund_amount == 4395
    assert _stock(db, variant) == 10
    with db.transaction() as session:
        order = session.get(Order, order_id)
        assert (order.stage, order.status) == (OrderStage.cancelled, OrderStatus.refunded)
        assert session.get(Refund, cancelled.refund_id).status.value == "succeeded"
    assert _events(db, order_id)[-2:] == ["order.cancelled", "order.refunded"]


def test_an_order_cannot_be_cancelled_once_packed(db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 2)])
    _move(db, clock, order_id, "allocated", "picking", "packed")

    with pytest.raises(StageConflict) as refused:
        _cancel(db, clock, order_id)

    assert refused.value.extensions["current_stage"] == "packed"
    assert _stock(db, variant) == 8
    with db.transaction() as session:
        assert session.get(Order, order_id).refunded_amount == 0
        assert session.scalar(select(func.count()).select_from(Refund)) == 0


def test_a_partial_cancel_refunds_those_units_and_cancelling_the_rest_refunds_delivery(
        db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 3)])  # 6000, free delivery
    with db.transaction() as session:
        line_id = session.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id))

    some = _cancel(db, clock, order_id, lines={line_id: 1}, key="k1")

    assert some.refund_amount == 2000
    assert _stock(db, variant) == 8
    with db.transaction() as session:
        order = session.get(Order, order_id)
        assert (order.stage, order.status) == (OrderStage.paid, OrderStatus.partially_refunded)
        assert session.get(OrderLine, line_id).cancelled_quantity == 1

    rest = _cancel(db, clock, order_id, lines={line_id: 2}, key="k2")

    assert rest.refund_amount == 4000
    assert _stock(db, variant) == 10
    with db.transaction() as session:
        order = session.get(Order, order_id)
        assert (order.stage, order.status) == (OrderStage.cancelled, OrderStatus.refunded)


def test_cancelling_more_units_than_a_line_has_changes_nothing(db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 1)])
    with db.transaction() as session:
        line_id = session.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id))

    with pytest.raises(DomainError):
        _cancel(db, clock, order_id, lines={line_id: 2})
    with pytest.raises(DomainError):
        _cancel(db, clock, order_id, lines={line_id + 999: 1})

    assert _stock(db, variant) == 9
    with db.transaction() as session:
        assert session.get(OrderLine, line_id).cancelled_quantity == 0


def test_the_address_changes_before_packing_and_not_after(db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 1)])
    new = {"name": "Ada", "line1": "2 Elder St", "line2": "", "city": "London",
           "postcode": "E1 6BT", "country": "GB"}
    with db.transaction() as session:
        lifecycle.change_address(session, clock=clock, order=session.get(Order, order_id),
                                 address=new)
    _move(db, clock, order_id, "allocated", "picking", "packed")

    with pytest.raises(StageConflict), db.transaction() as session:
        lifecycle.change_address(session, clock=clock, order=session.get(Order, order_id),
                                 address={**new, "postcode": "N1 9GU"})

    with db.transaction() as session:
        assert session.get(Order, order_id).shipping_address["postcode"] == "E1 6BT"
    assert "order.address_changed" in _events(db, order_id)


def test_two_concurrent_cancellations_of_one_order_refund_once(db, clock, settings, variant):
    order_id = paid_order(db, clock, settings, [(variant, 2)])

    results = race(2, lambda _: _cancel(db, clock, order_id))

    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["Cancellation", "StageConflict"], results
    refused = next(r for r in results if isinstance(r, StageConflict))
    assert refused.extensions["current_stage"] == "cancelled"
    assert _stock(db, variant) == 10
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Refund)) == 1
        assert session.scalar(select(func.count()).select_from(LocalProviderCharge)
                              .where(LocalProviderCharge.kind == "refund")) == 1
        assert session.get(Order, order_id).refunded_amount == 4395
