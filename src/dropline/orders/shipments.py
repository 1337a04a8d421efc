"""Shipments, pick lists and the stage moves that touch them: session first, keyword-only
arguments; flush, never commit. Booking with a carrier happens outside the transaction
(``orders.flows.ship_order``); these functions record what it answered.

    allocate     paid -> allocated: the order's lines are split by the location their units
                 are taken from, one shipment per location (a line may be moved to another
                 location: its units are taken there by a conditional UPDATE and given back
                 where they were)
    advance      the next step that needs no input: allocate, start picking, pack
    record_shipping / settle_delivery   a shipment's tracking; the order moves to shipped
                 when its last parcel is shipped, and to delivered / delivery-failed /
                 returned with all of them
    pick_list    what to pick at one location on one day
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropline.catalog.service import return_stock, take_stock
from dropline.clock import Clock
from dropline.errors import InvalidInput, NotFound, OutOfStock
from dropline.locations.models import Location
from dropline.orders import lifecycle
from dropline.orders.carriers import CarrierBooking
from dropline.orders.models import Order, OrderLine, Shipment, ShipmentLine, ShipmentStatus
from dropline.orders.rules import FORWARD, OrderStage, StageConflict

__all__ = ["PickRow", "ShipmentView", "advance", "allocate", "order_shipments", "pick_list",
           "record_shipping", "settle_delivery"]


@dataclass(frozen=True)
class ShipmentView:
    shipment: Shipment
    location_code: str
    lines: list[tuple[OrderLine, int]]  # (line, units still to ship)

    @property
    def units(self) -> int:
        return sum(units for _, units in self.lines)


def order_shipments(session: Session, order_id: int) -> list[ShipmentView]:
    rows = session.execute(
        select(Shipment, Location.code, OrderLine)
        .join(Location, Location.id == Shipment.location_id)
        .join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
        .join(OrderLine, OrderLine.id == ShipmentLine.order_line_id)
        .where(Shipment.order_id == order_id).order_by(Shipment.id, OrderLine.id)).all()
    views: dict[int, ShipmentView] = {}
    for shipment, code, line in rows:
        view = views.setdefault(shipment.id, ShipmentView(shipment, code, []))
        view.lines.append((line, line.quantity - line.cancelled_quantity))
    return list(views.values())


def allocate(session: Session, *, clock: Clock, order: Order,
             moves: Mapping[int, str] | None = None) -> list[Shipment]:
    """paid -> allocated, with one shipment per location. ``moves`` (order line id ->
    location code) takes some lines from another location than the one checkout took them
    from; a location without the units refuses with 409 and nothing changes."""
    lines = list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                 .order_by(OrderLine.variant_id, OrderLine.id)))
    unknown = sorted(set(moves or {}) - {line.id for line in lines})
    if unknown:
        raise InvalidInput(f"order {order.id} has no line {unknown[0]}", field="lines")
    lifecycle.move_stage(session, clock=clock, order=order, action="allocated")
    origin = order.location_id
    where: dict[int, int] = {}
    for line in lines:
        units = line.quantity - line.cancelled_quantity
        code = (moves or {}).get(line.id)
        target = origin
        if code is not None:
            location = session.scalar(select(Location).where(Location.code == code))
            if location is None:
                raise NotFound(f"location {code!r} not found")
            target = location.id
        if target is None:
            raise InvalidInput(f"line {line.id} has no location to ship from; move it to one",
                               field="lines")
        if target != origin and units:
            # Lines in variant order, so concurrent allocations lock stock rows in one order.
            if not take_stock(session, location_id=target, variant_id=line.variant_id,
                              quantity=units):
                raise OutOfStock(f"{line.sku}: not {units} on hand at {code}", sku=line.sku)
            if origin is not None:
                return_stock(session, location_id=origin, variant_id=line.variant_id,
                             quantity=units)
        where[line.id] = target
    shipments: dict[int, Shipment] = {}
    for line in lines:
        location_id = where[line.id]
        if location_id not in shipments:
            shipments[location_id] = Shipment(order_id=order.id, location_id=location_id,
                                              status=ShipmentStatus.pending, carrier="",
                                              service="", tracking_url="",
                                              created_at=clock.now())
            session.add(shipments[location_id])
            session.flush()
        session.add(ShipmentLine(shipment_id=shipments[location_id].id, order_line_id=line.id))
    session.flush()
    return list(shipments.values())


def advance(session: Session, *, clock: Clock, order: Order) -> Order:
    """The next step that needs no more input: allocate (from where checkout took the units),
    start picking, pack. Shipping needs a carrier (``flows.ship_order``), delivery a word
    from the carrier or the driver."""
    action = FORWARD.get(order.stage)
    if action is None:
        raise StageConflict(f"the order is {order.stage.value}; advance moves only paid, "
                            "allocated and picking orders (ship, deliver and cancel are "
                            "their own commands)", current_stage=order.stage.value,
                            action="advance")
    if action == "allocated":
        allocate(session, clock=clock, order=order)
    else:
        lifecycle.move_stage(session, clock=clock, order=order, action=action)
    return order


def shipment_of(session: Session, *, order: Order, shipment_id: int | None) -> Shipment:
    """The order's shipment ``shipment_id``, or its only pending one when None."""
    shipments = list(session.scalars(select(Shipment).where(Shipment.order_id == order.id)
                                     .order_by(Shipment.id)))
    if shipment_id is not None:
        found = next((s for s in shipments if s.id == shipment_id), None)
        if found is None:
            raise NotFound(f"order {order.id} has no shipment {shipment_id}")
        return found
    waiting = [s for s in shipments
               if s.status in (ShipmentStatus.pending, ShipmentStatus.failed)]
    if len(waiting) != 1:
        raise InvalidInput(f"order {order.id} has {len(waiting)} shipments waiting to ship; "
                           "name one (--shipment)", field="shipment_id",
                           shipments=[s.id for s in waiting])
    return waiting[0]


def check_shippable(order: Order, shipment: Shipment) -> None:
    if order.stage not in (OrderStage.packed, OrderStage.delivery_failed):
        raise StageConflict(f"the order is {order.stage.value}; parcels ship once it is packed",
                            current_stage=order.stage.value, action="shipped")
    if shipment.status not in (ShipmentStatus.pending, ShipmentStatus.failed):
        raise StageConflict(f"shipment {shipment.id} is already {shipment.status.value}",
                            current_stage=order.stage.value, action="shipped")


def record_shipping(session: Session, *, clock: Clock, order: Order, shipment: Shipment,
                    carrier: str, booking: CarrierBooking) -> Order:
    """Records a parcel's carrier and tracking; when no parcel of the order is left to ship,
    the order moves to shipped (its event carries every parcel's tracking)."""
    check_shippable(order, shipment)
    taken = session.scalar(select(Shipment.id).where(
        Shipment.carrier == carrier, Shipment.tracking_number == booking.tracking_number,
        Shipment.id != shipment.id))
    if taken is not None:
        raise InvalidInput(f"{carrier} tracking number {booking.tracking_number} is already "
                           f"on shipment {taken}", field="tracking_number")
    # Conditional on the status read: of two concurrent shippers of one parcel, one records.
    moved = session.execute(
        update(Shipment).where(Shipment.id == shipment.id,
                               Shipment.status.in_((ShipmentStatus.pending,
                                                    ShipmentStatus.failed)))
        .values(status=ShipmentStatus.shipped, carrier=carrier, service=booking.service,
                tracking_number=booking.tracking_number, tracking_url=booking.tracking_url,
                shipped_at=clock.now())).rowcount
    session.refresh(shipment)
    if moved != 1:
        raise StageConflict(f"shipment {shipment.id} was {shipment.status.value} meanwhile",
                            current_stage=order.stage.value, action="shipped")
    views = order_shipments(session, order.id)
    if all(view.shipment.status is ShipmentStatus.shipped for view in views if view.units):
        lifecycle.move_stage(session, clock=clock, order=order, action="shipped",
                             shipments=[_tracking(view) for view in views if view.units])
    return order


def _tracking(view: ShipmentView) -> dict[str, object]:
    s = view.shipment
    return {"shipment_id": s.id, "carrier": s.carrier, "tracking_number": s.tracking_number,
            "tracking_url": s.tracking_url, "from": view.location_code}


_OUTCOME = {"delivered": ShipmentStatus.delivered, "delivery_failed": ShipmentStatus.failed,
            "returned": ShipmentStatus.returned}


def settle_delivery(session: Session, *, clock: Clock, order: Order, outcome: str,
                    note: str = "") -> Order:
    """What happened to the order's parcels: ``delivered``, ``delivery_failed`` (it may be
    shipped again) or ``returned`` (to sender). Applies to every parcel on its way."""
    if outcome not in _OUTCOME:
        raise InvalidInput(f"outcome is one of {', '.join(_OUTCOME)}", field="outcome")
    lifecycle.move_stage(session, clock=clock, order=order, action=outcome, note=note)
    for shipment in session.scalars(select(Shipment).where(
            Shipment.order_id == order.id,
            Shipment.status.in_((ShipmentStatus.shipped, ShipmentStatus.failed)))):
        shipment.status = _OUTCOME[outcome]
        if outcome == "delivered":
            shipment.delivered_at = clock.now()
    session.flush()
    return order


@dataclass(frozen=True)
class PickRow:
    sku: str
    product_name: str
    variant_name: str
    quantity: int
    orders: list[int]


def pick_list(session: Session, *, location_code: str, day: date) -> list[PickRow]:
    """What to pick at a location for the shipments allocated there on ``day`` (UTC) whose
    orders are allocated or being picked: units by SKU, with the orders that need them."""
    location = session.scalar(select(Location).where(Location.code == location_code))
    if location is None:
        raise NotFound(f"location {location_code!r} not found")
    start = datetime.combine(day, time(0), tzinfo=UTC)
    rows = session.execute(
        select(OrderLine, Order.id)
        .join(ShipmentLine, ShipmentLine.order_line_id == OrderLine.id)
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .join(Order, Order.id == Shipment.order_id)
        .where(Shipment.location_id == location.id, Shipment.status == ShipmentStatus.pending,
               Shipment.created_at >= start, Shipment.created_at < start + timedelta(days=1),
               Order.stage.in_((OrderStage.allocated, OrderStage.picking)))
        .order_by(OrderLine.sku, Order.id)).all()
    units: dict[str, int] = defaultdict(int)
    orders: dict[str, list[int]] = defaultdict(list)
    names: dict[str, tuple[str, str]] = {}
    for line, order_id in rows:
        left = line.quantity - line.cancelled_quantity
        if left:
            units[line.sku] += left
            orders[line.sku].append(order_id)
            names[line.sku] = (line.product_name, line.variant_name)
    return [PickRow(sku, *names[sku], units[sku], orders[sku]) for sku in sorted(units)]
