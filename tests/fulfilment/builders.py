"""Builders for fulfilment tests: a small London network (Park Royal warehouse, a Hackney
micro-hub with two cargo bikes), a carrier rate card, products with weight, and paid orders
to book into windows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, time

from dropline.catalog.service import VariantSpec, create_product, set_stock, variants_of
from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.locations.models import Location, LocationKind
from dropline.orders.models import Order, OrderStatus

CENTRAL = R.GeoPoint(51.5290, -0.2740)  # Park Royal
HACKNEY = R.GeoPoint(51.5430, -0.0570)
NEAR_HACKNEY = R.GeoPoint(51.5460, -0.0550)  # about 370 m from the hub
DALSTON = R.GeoPoint(51.5480, -0.0750)  # about 1.4 km from the hub
MANCHESTER = R.GeoPoint(53.4808, -2.2426)

RATES = (
    R.CarrierRate("london", 40, 1000, 460, 1), R.CarrierRate("london", 40, 2000, 540, 1),
    R.CarrierRate("london", 40, 5000, 690, 1),
    R.CarrierRate("regional", 200, 1000, 590, 1), R.CarrierRate("regional", 200, 5000, 890, 1),
    R.CarrierRate("national", 1200, 1000, 690, 2), R.CarrierRate("national", 1200, 5000, 990, 2),
)
EVERY_DAY = {day: ["08:00", "20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                   "sun")}


@dataclass(frozen=True)
class Network:
    central_id: int
    hub_id: int
    vehicle_ids: tuple[int, ...]


def make_network(db: Database, clock: Clock, *, vehicles: int = 2,
                 capacity_grams: int = 60_000, radius_m: int = 4000,
                 shift: tuple[time, time] = (time(8), time(20)), hub_handling: int = 80,
                 cost_per_hour: int = 1600) -> Network:
    with db.transaction() as session:
        central = Location(code="central", name="Park Royal", kind=LocationKind.central_warehouse,
                           latitude=CENTRAL.latitude, longitude=CENTRAL.longitude)
        hub = Location(code="hub-hackney", name="Hackney micro-hub", kind=LocationKind.micro_hub,
                       latitude=HACKNEY.latitude, longitude=HACKNEY.longitude)
        session.add_all([central, hub])
        session.flush()
        service.configure_site(session, clock=clock, location_code="central",
                               handling_amount=150, dispatch_cutoff_hour=14)
        service.configure_site(session, clock=clock, location_code="hub-hackney",
                               handling_amount=hub_handling, opening_hours=EVERY_DAY,
                               service_radius_m=radius_m, speed_kmh=18.0, detour_factor=1.3,
                               service_seconds=180, window_price_amount=395,
                               green_price_amount=195)
        service.set_rate_card(session, rates=RATES)
        ids = tuple(
            service.add_vehicle(session, location_code="hub-hackney", name=f"cargo bike {n}",
                                capacity_grams=capacity_grams, shift_start=shift[0],
                                shift_end=shift[1], cost_per_km_amount=20,
                                cost_per_hour_amount=cost_per_hour).id
            for n in range(1, vehicles + 1))
        return Network(central.id, hub.id, ids)


def make_item(db: Database, clock: Clock, *, central: int = 10, hub: int = 10,
              weight_grams: int = 340, price: int = 9500) -> int:
    """A variant with stock at the warehouse and the hub; returns its id."""
    suffix = uuid.uuid4().hex[:8]
    with db.transaction() as session:
        product = create_product(session, clock=clock, name=f"Fig Leaf {suffix}",
                                 family_slug="eau-de-parfum",
                                 variants=[VariantSpec(sku=f"EF-{suffix}", name="50 ml",
                                                       price_amount=price, currency="GBP",
                                                       weight_grams=weight_grams)])
        variant = variants_of(session, [product.id])[product.id][0]
        for code, units in (("central", central), ("hub-hackney", hub)):
            set_stock(session, clock=clock, location_code=code, variant_id=variant.id,
                      on_hand=units, actor="test")
        return variant.id


def make_windows(db: Database, *, day: date = date(2026, 3, 2), capacity: int = 40,
                 minutes: int = 120, cutoff: int = 120) -> list[int]:
    with db.transaction() as session:
        return [w.id for w in service.create_windows(
            session, location_code="hub-hackney", day=day, window_minutes=minutes,
            capacity=capacity, cutoff_minutes=cutoff)]


def make_orders(db: Database, clock: Clock, count: int) -> list[int]:
    """Paid orders (the minimum a booking needs), for one invented customer."""
    with db.transaction() as session:
        customer = Customer(email=f"c-{uuid.uuid4().hex[:8]}@example.com", password_hash="x",
                            created_at=clock.now())
        session.add(customer)
        session.flush()
        orders = [Order(customer_id=customer.id, email=customer.email, status=OrderStatus.paid,
                        currency="GBP", subtotal_amount=1000, discount_amount=0,
                        shipping_amount=0, total_amount=1000, refunded_amount=0,
                        created_at=clock.now(), paid_at=clock.now())
                  for _ in range(count)]
        session.add_all(orders)
        session.flush()
        return [order.id for order in orders]
