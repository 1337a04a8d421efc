"""Fulfilment tables, keyed to the existing ``locations``: what each site costs, the hubs'
vehicles and delivery windows, bookings, planned routes, the brand's rules, decisions, and the
stock movements (transfers, micro-factory production runs) that restock hubs."""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


def _enum(kind: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(kind, native_enum=False, length=length,
                values_callable=lambda members: [m.value for m in members])


class FulfilmentSite(Base):
    """Costs and hours of one location. For the central warehouse ``handling_amount`` is the
    pick/pack cost; for a hub, the handling cost per order plus how its vans drive."""

    __tablename__ = "fulfilment_sites"

    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True)
    handling_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    service_radius_m: Mapped[int] = mapped_column(default=0)  # hubs: how far the vans go
    speed_kmh: Mapped[float] = mapped_column(Float, default=18.0)
    detour_factor: Mapped[float] = mapped_column(Float, default=1.3)
    service_seconds: Mapped[int] = mapped_column(default=180)  # at each door
    window_price_amount: Mapped[int] = mapped_column(BigInteger, default=395)
    green_price_amount: Mapped[int] = mapped_column(BigInteger, default=195)
    dispatch_cutoff_hour: Mapped[int] = mapped_column(default=14)  # central: same-day dispatch
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("handling_amount >= 0 AND window_price_amount >= 0 AND "
                        "green_price_amount >= 0", name="amounts_non_negative"),
        CheckConstraint("service_radius_m >= 0 AND service_seconds >= 0 AND speed_kmh > 0 "
                        "AND detour_factor >= 1", name="driving_sane"),
    )


class CarrierRateRow(Base):
    """One cell of the carrier's rate card: a zone (distance band) by a weight step."""

    __tablename__ = "carrier_rates"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    zone: Mapped[str] = mapped_column(String(32))
    max_distance_km: Mapped[float] = mapped_column(Float)
    max_weight_grams: Mapped[int]
    amount: Mapped[int] = mapped_column(BigInteger)
    transit_days: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        UniqueConstraint("max_distance_km", "max_weight_grams"),
        CheckConstraint("amount >= 0 AND transit_days >= 0 AND max_weight_grams > 0 AND "
                        "max_distance_km > 0", name="rate_sane"),
    )


class Vehicle(Base):
    """A hub's van or cargo bike: capacity (grams), a daily shift (local times) and costs."""

    __tablename__ = "vehicles"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    capacity_grams: Mapped[int]
    shift_start: Mapped[time] = mapped_column(Time)
    shift_end: Mapped[time] = mapped_column(Time)
    cost_per_km_amount: Mapped[int] = mapped_column(BigInteger)
    cost_per_hour_amount: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        CheckConstraint("capacity_grams > 0 AND cost_per_km_amount >= 0 AND "
                        "cost_per_hour_amount >= 0", name="vehicle_sane"),
    )


class WindowStatus(enum.StrEnum):
    open = "open"
    planned = "planned"


class DeliveryWindow(Base):
    """A hub's delivery window. ``booked`` only rises by one conditional UPDATE
    (``booked < capacity``), so capacity holds under any interleaving of bookings."""

    __tablename__ = "delivery_windows"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("locations.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    cutoff_at: Mapped[datetime] = mapped_column(index=True)
    capacity: Mapped[int]
    booked: Mapped[int] = mapped_column(default=0)
    status: Mapped[WindowStatus] = mapped_column(_enum(WindowStatus), default=WindowStatus.open)

    __table_args__ = (
        UniqueConstraint("location_id", "starts_at"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="within_capacity"),
        CheckConstraint("starts_at < ends_at AND cutoff_at <= starts_at", name="times_ordered"),
    )


class BookingStatus(enum.StrEnum):
    booked = "booked"
    cancelled = "cancelled"


class WindowBooking(Base):
    """An order's stop in a window. ``live_order_id`` equals ``order_id`` while booked and is
    NULL once cancelled: its unique constraint allows one live booking per order."""

    __tablename__ = "window_bookings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    window_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("delivery_windows.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), index=True)
    live_order_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    weight_grams: Mapped[int]
    label: Mapped[str] = mapped_column(String(120), default="")  # e.g. the postcode
    status: Mapped[BookingStatus] = mapped_column(_enum(BookingStatus),
                                                  default=BookingStatus.booked)
    booked_at: Mapped[datetime]


class RoutePlanRow(Base):
    """The plan of one window, made at its cutoff."""

    __tablename__ = "route_plans"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    window_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("delivery_windows.id", ondelete="CASCADE"), unique=True)
    planned_at: Mapped[datetime]
    solver: Mapped[str] = mapped_column(String(32))
    cost_amount: Mapped[int] = mapped_column(BigInteger)
    distance_m: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[int] = mapped_column(BigInteger)
    feasible: Mapped[bool]
    # Bookings the plan could not fit (they go out by carrier instead).
    unassigned_booking_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class RouteRow(Base):
    __tablename__ = "routes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    plan_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("route_plans.id", ondelete="CASCADE"), index=True)
    vehicle_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("vehicles.id"))
    number: Mapped[int]
    departs_at: Mapped[datetime]
    returns_at: Mapped[datetime]
    load_grams: Mapped[int]
    distance_m: Mapped[int] = mapped_column(BigInteger)
    cost_amount: Mapped[int] = mapped_column(BigInteger)


class RouteStopRow(Base):
    __tablename__ = "route_stops"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    route_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("routes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    booking_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("window_bookings.id"))
    eta: Mapped[datetime]


class FulfilmentRuleRow(Base):
    """One of the brand's rules, stored as data and read in ``position`` order."""

    __tablename__ = "fulfilment_rules"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    position: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(120))
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(32))
    max_premium_amount: Mapped[int | None] = mapped_column(BigInteger)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime]


class FulfilmentDecisionRow(Base):
    """What was decided for an order and why (both costs, the deciding rule)."""

    __tablename__ = "fulfilment_decisions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"),
                                                 unique=True)
    customer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("customers.id"))
    path: Mapped[str] = mapped_column(String(24))
    location_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("locations.id"))
    window_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("delivery_windows.id"))
    cost_amount: Mapped[int] = mapped_column(BigInteger)
    central_cost_amount: Mapped[int | None] = mapped_column(BigInteger)
    hub_cost_amount: Mapped[int | None] = mapped_column(BigInteger)
    rule: Mapped[str] = mapped_column(String(200))
    explanation: Mapped[str] = mapped_column(String(2000))
    decided_at: Mapped[datetime]


class MovementKind(enum.StrEnum):
    transfer = "transfer"
    production = "production"


class MovementStatus(enum.StrEnum):
    in_progress = "in-progress"
    completed = "completed"


class StockMovement(Base):
    """Stock on its way to a location: a transfer (taken from ``source`` when it starts) or a
    micro-factory production run (made at ``source``). When ``due_at`` passes, a job completes
    it and the destination's ``on_hand`` rises by arithmetic, exactly once (the status moves by
    a conditional UPDATE first)."""

    __tablename__ = "stock_movements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[MovementKind] = mapped_column(_enum(MovementKind))
    source_location_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("locations.id"))
    destination_location_id: Mapped[int] = mapped_column(BigInteger,
                                                         ForeignKey("locations.id"))
    variant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("variants.id"))
    quantity: Mapped[int]
    status: Mapped[MovementStatus] = mapped_column(_enum(MovementStatus))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_stock_movements_status_due_at", "status", "due_at"),
    )


class WindowTemplate(Base):
    """How a hub's delivery windows are cut, kept ``days_ahead`` days ahead by the scheduler
    (``fulfilment.jobs``): the days and hours come from the hub's opening hours; one template
    per hub."""

    __tablename__ = "window_templates"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("locations.id", ondelete="CASCADE"), unique=True)
    window_minutes: Mapped[int]
    capacity: Mapped[int]
    cutoff_minutes: Mapped[int]
    first_start: Mapped[time | None] = mapped_column(Time)
    days_ahead: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("window_minutes >= 15 AND window_minutes <= 720 AND capacity >= 1 "
                        "AND cutoff_minutes >= 0 AND days_ahead >= 1 AND days_ahead <= 60",
                        name="template_sane"),
    )
