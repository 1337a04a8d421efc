"""Shipments: split by location at allocation, pick lists per location and day, shipping
through the carrier port (the built-in manual carrier), delivery outcomes, and the packing
slip and 4x6 label as PDF."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dropline.adapters.carriers import build_carriers
from dropline.catalog.service import set_stock
from dropline.errors import InvalidInput, OutOfStock
from dropline.events.models import DomainEvent
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.orders import documents, flows, shipments
from dropline.orders.models import Order, OrderLine, Shipment, ShipmentStatus
from dropline.orders.rules import OrderStage, StageConflict
from tests.builders import make_location, make_product
from tests.orders.lifecycle_builders import paid_order


@pytest.fixture
def two_variants(db, clock):
    make_location(db)
    make_location(db, code="hub-east", kind=LocationKind.micro_hub)
    first = make_product(db, clock, price=2000, stock=10, name="Fig Leaf")[1]
    second = make_product(db, clock, price=3000, stock=10, name="Vetiver")[1]
    with db.transaction() as session:
        set_stock(session, clock=clock, location_code="hub-east", variant_id=second,
                  on_hand=4, actor="test")
    return first, second


def _line_ids(db, order_id):
    with db.transaction() as session:
        return {line.variant_id: line.id for line in session.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id))}


def _allocate(db, clock, order_id, moves=None):
    with db.transaction() as session:
        return [s.id for s in shipments.allocate(session, clock=clock,
                                                 order=session.get(Order, order_id),
                                                 moves=moves)]


def _advance(db, clock, order_id, times=1):
    for _ in range(times):
        with db.transaction() as session:
            shipments.advance(session, clock=clock, order=session.get(Order, order_id))


def _on_hand(db, variant_id, code):
    with db.transaction() as session:
        return session.scalar(select(StockLevel.on_hand).join(
            Location, Location.id == StockLevel.location_id).where(
            StockLevel.variant_id == variant_id, Location.code == code))


def _ship(db, clock, order_id, **kwargs):
    return flows.ship_order(db, clock=clock, carriers=build_carriers(), order_id=order_id,
                            carrier="manual", **kwargs)


def _stage(db, order_id):
    with db.transaction() as session:
        return session.get(Order, order_id).stage


def test_allocation_makes_one_shipment_per_location_and_moves_the_units(
        db, clock, settings, two_variants):
    fig, vetiver = two_variants
    order_id = paid_order(db, clock, settings, [(fig, 1), (vetiver, 2)])

    shipment_ids = _allocate(db, clock, order_id, moves={_line_ids(db, order_id)[vetiver]:
                                                         "hub-east"})

    assert len(shipment_ids) == 2
    assert (_on_hand(db, vetiver, "central"), _on_hand(db, vetiver, "hub-east")) == (10, 2)
    with db.transaction() as session:
        codes = sorted(view.location_code for view in shipments.order_shipments(session,
                                                                                 order_id))
    assert codes == ["central", "hub-east"]
    assert _stage(db, order_id) is OrderStage.allocated


def test_a_location_without_the_units_refuses_the_allocation_and_nothing_changes(
        db, clock, settings, two_variants):
    _, vetiver = two_variants
    order_id = paid_order(db, clock, settings, [(vetiver, 5)])

    with pytest.raises(OutOfStock):
        _allocate(db, clock, order_id, moves={_line_ids(db, order_id)[vetiver]: "hub-east"})

    assert _stage(db, order_id) is OrderStage.paid
    assert (_on_hand(db, vetiver, "central"), _on_hand(db, vetiver, "hub-east")) == (5, 4)
    with db.transaction() as session:
        assert session.scalar(select(Shipment.id)) is None


def test_the_pick_list_counts_units_by_sku_for_one_location_and_day(
        db, clock, settings, two_variants):
    fig, vetiver = two_variants
    first = paid_order(db, clock, settings, [(fig, 2), (vetiver, 1)])
    second = paid_order(db, clock, settings, [(fig, 1)])
    _advance(db, clock, first)
    _advance(db, clock, second)

    with db.transaction() as session:
        rows = shipments.pick_list(session, location_code="central", day=clock.now().date())
        tomorrow = shipments.pick_list(session, location_code="central",
                                       day=clock.now().date().replace(day=3))

    by_sku = {row.product_name: (row.quantity, row.orders) for row in rows}
    assert by_sku == {"Fig Leaf": (3, [first, second]), "Vetiver": (1, [first])}
    assert tomorrow == []


def test_a_packed_order_ships_with_its_tracking_and_is_delivered(
        db, clock, settings, two_variants):
    fig, _ = two_variants
    order_id = paid_order(db, clock, settings, [(fig, 1)])
    _advance(db, clock, order_id, times=3)

    _ship(db, clock, order_id, tracking_number="RM123456785GB")

    with db.transaction() as session:
        shipment = session.scalar(select(Shipment))
        assert (shipment.status, shipment.tracking_number) == (ShipmentStatus.shipped,
                                                               "RM123456785GB")
        event = session.scalar(select(DomainEvent).where(DomainEvent.type == "order.shipped"))
        assert event.payload["shipments"][0]["tracking_number"] == "RM123456785GB"
        shipments.settle_delivery(session, clock=clock, order=session.get(Order, order_id),
                                  outcome="delivered")
    assert _stage(db, order_id) is OrderStage.delivered


def test_an_order_with_two_parcels_is_shipped_when_its_last_parcel_is(
        db, clock, settings, two_variants):
    fig, vetiver = two_variants
    order_id = paid_order(db, clock, settings, [(fig, 1), (vetiver, 1)])
    first, second = _allocate(db, clock, order_id,
                              moves={_line_ids(db, order_id)[vetiver]: "hub-east"})
    _advance(db, clock, order_id, times=2)

    with pytest.raises(InvalidInput, match="name one"):
        _ship(db, clock, order_id)
    _ship(db, clock, order_id, shipment_id=first)
    assert _stage(db, order_id) is OrderStage.packed
    _ship(db, clock, order_id, shipment_id=second)
    assert _stage(db, order_id) is OrderStage.shipped


def test_a_tracking_number_already_used_by_the_carrier_is_refused(
        db, clock, settings, two_variants):
    fig, _ = two_variants
    first = paid_order(db, clock, settings, [(fig, 1)])
    second = paid_order(db, clock, settings, [(fig, 1)])
    _advance(db, clock, first, times=3)
    _advance(db, clock, second, times=3)
    _ship(db, clock, first, tracking_number="RM1")

    with pytest.raises(InvalidInput, match="already"):
        _ship(db, clock, second, tracking_number="RM1")

    assert _stage(db, second) is OrderStage.packed


def test_an_order_not_yet_packed_cannot_ship(db, clock, settings, two_variants):
    fig, _ = two_variants
    order_id = paid_order(db, clock, settings, [(fig, 1)])
    _advance(db, clock, order_id)

    with pytest.raises(StageConflict) as refused:
        _ship(db, clock, order_id)

    assert refused.value.extensions["current_stage"] == "allocated"
    with db.transaction() as session:
        assert session.scalar(select(Shipment.status)) is ShipmentStatus.pending


def test_the_packing_slip_and_the_label_show_the_order_and_the_parcel(
        db, clock, settings, two_variants):
    fig, _ = two_variants
    order_id = paid_order(db, clock, settings, [(fig, 2)])
    _advance(db, clock, order_id, times=3)
    shipment_id = _ship(db, clock, order_id, tracking_number="RM123456785GB")

    with db.transaction() as session:
        doc = documents.shipment_document(session, shipment_id=shipment_id,
                                          shop_name="Fig & Smoke")
    slip, label = documents.packing_slip_pdf(doc), documents.label_pdf(doc)

    assert slip.startswith(b"%PDF") and label.startswith(b"%PDF")
    assert f"Order {order_id}".encode() in slip
    assert b"Parcel 1 of 1" in slip and b"Fig Leaf" in slip and b"Ada Lovelace" in slip
    assert b"/MediaBox [ 0 0 288 432 ]" in label  # 4x6 inches
    assert b"RM123456785GB" in label
