"""A simulated London city day: what each order costs to deliver, three ways.

    python bench/city_day.py --json            # 2,400 orders, 5 hubs, 3 s of solver per window

The same seeded orders (the shopping day before delivery; 75 % to London addresses spread over
the postcode districts, the rest across the UK; 1-3 items of the demo catalog's weights; hubs
stock about two thirds of the SKUs) are costed as:

1. all central: pick/pack at Park Royal plus the carrier's rate for zone and weight;
2. nearest hub without windows: an order within a hub's radius whose nearest such hub has the
   stock is taken there and driven out on a trip of its own (hub, door, hub), else central;
3. Dropline: each order goes through the real services on a SQLite database
   (``decide_fulfilment``'s option gathering and rules, then ``book_window``), the shopper
   choosing between their preferred window and any cheaper "green" one; at cutoff every window
   is planned with PyVRP (``plan_window``) and costed from the stored routes (km and hours of
   the vans) plus the hub's handling per order; a stop the plan could not fit ships central.

Costs are the brand's, in pence, not the prices shoppers pay. Rich progress goes to stderr, the
figures to stdout. Times are never asserted on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time as timer
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from dropline.adapters.geocoding import LONDON_DISTRICTS
from dropline.adapters.routing import PyVRPSolver
from dropline.catalog.service import VariantSpec, create_product, set_stock, variants_of
from dropline.clock import FrozenClock
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment.models import DeliveryWindow, RoutePlanRow, RouteRow, WindowBooking
from dropline.fulfilment.planning import plan_window
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.migrate import upgrade
from dropline.orders.models import Order, OrderStatus

DELIVERY_DAY = date(2026, 3, 10)  # a Tuesday (GMT)
CENTRAL = ("central", "Park Royal warehouse", 51.5290, -0.2740)
HUBS = (
    ("hub-hackney", "Hackney", 51.5430, -0.0570),
    ("hub-brixton", "Brixton", 51.4613, -0.1147),
    ("hub-camden", "Camden", 51.5417, -0.1466),
    ("hub-clapham", "Clapham", 51.4651, -0.1410),
    ("hub-hammersmith", "Hammersmith", 51.4927, -0.2239),
)
UK = ((53.4808, -2.2426), (51.4545, -2.5879), (53.8008, -1.5491), (50.8225, -0.1372),
      (51.7520, -1.2577), (52.2053, 0.1218), (52.4862, -1.8904), (55.9533, -3.1883),
      (51.4816, -3.1791), (54.9783, -1.6178), (52.9548, -1.1581), (51.2798, 1.0789))
RATES = (
    R.CarrierRate("london", 40, 1000, 460, 1), R.CarrierRate("london", 40, 2000, 540, 1),
    R.CarrierRate("london", 40, 5000, 690, 1), R.CarrierRate("regional", 200, 1000, 590, 1),
    R.CarrierRate("regional", 200, 2000, 690, 1), R.CarrierRate("regional", 200, 5000, 890, 1),
    R.CarrierRate("national", 1200, 1000, 690, 2), R.CarrierRate("national", 1200, 2000, 790, 2),
    R.CarrierRate("national", 1200, 5000, 990, 2),
    R.CarrierRate("london", 40, 30_000, 990, 1), R.CarrierRate("regional", 200, 30_000, 1290, 1),
    R.CarrierRate("national", 1200, 30_000, 1490, 2),
)
PICK_PACK, HUB_HANDLING = 150, 80
RADIUS_M = 3500
VEHICLES_PER_HUB, VEHICLE_CAPACITY = 3, 80_000
COST_PER_KM, COST_PER_HOUR = 25, 1600
WINDOW_STARTS = (10, 12, 14, 16, 18)  # two-hour windows
WINDOW_CAPACITY = 80
# Weights (g) of the demo catalog's parcels: travel spray, 50 ml, 100 ml, candles, refills,
# discovery sets, diffusers.
WEIGHTS = (90, 340, 520, 640, 1450, 180, 80, 780, 320, 900, 1100)
# The brand's rules: the two examples of the issue, as the demo brand configures them.
RULES = [R.Rule("members with delivery subsidy always get a window",
                (R.Condition("member_delivery_subsidy", "eq", True),), "prefer-hub"),
         R.Rule("orders under 2 km prefer the hub", (R.Condition("distance_to_hub_km", "lt", 2),),
                "prefer-hub", max_premium_amount=150)]
err = Console(stderr=True)


@dataclass(frozen=True)
class SimOrder:
    index: int
    at: datetime
    point: R.GeoPoint
    lines: tuple[tuple[int, int], ...]  # (catalog index, quantity)
    preferred_window: int  # index into WINDOW_STARTS
    takes_green: bool
    member_subsidy: bool


def invent_orders(count: int, seed: int) -> list[SimOrder]:
    rng = random.Random(seed)
    districts = sorted(LONDON_DISTRICTS.items())
    shopping_day = datetime.combine(DELIVERY_DAY - timedelta(days=1), time(0), tzinfo=UTC)
    orders = []
    for index in range(count):
        if rng.random() < 0.75:
            _, (lat, lon) = rng.choice(districts)
            point = R.GeoPoint(lat + rng.uniform(-0.006, 0.006), lon + rng.uniform(-0.009, 0.009))
        else:
            lat, lon = rng.choice(UK)
            point = R.GeoPoint(lat + rng.uniform(-0.05, 0.05), lon + rng.uniform(-0.08, 0.08))
        items = rng.choice((1, 1, 1, 2, 2, 3))
        lines = tuple(sorted({rng.randrange(len(WEIGHTS)): rng.choice((1, 1, 2))
                              for _ in range(items)}.items()))
        at = shopping_day + timedelta(seconds=rng.uniform(7 * 3600, 23.5 * 3600))
        orders.append(SimOrder(index, at, point, lines, rng.randrange(len(WINDOW_STARTS)),
                               rng.random() < 0.6, rng.random() < 0.05))
    return sorted(orders, key=lambda o: o.at)


def seed_network(db: Database, clock: FrozenClock, seed: int) -> dict[int, int]:
    """Locations, costs, vehicles, windows and a catalog; returns catalog index -> variant."""
    rng = random.Random(seed + 1)
    every_day = {d: ["08:00", "21:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    with db.transaction() as session:
        session.add(Location(code=CENTRAL[0], name=CENTRAL[1],
                             kind=LocationKind.central_warehouse, latitude=CENTRAL[2],
                             longitude=CENTRAL[3]))
        for code, name, lat, lon in HUBS:
            session.add(Location(code=code, name=name, kind=LocationKind.micro_hub,
                                 latitude=lat, longitude=lon))
        session.flush()
        service.configure_site(session, clock=clock, location_code="central",
                               handling_amount=PICK_PACK)
        service.set_rate_card(session, rates=RATES)
        for code, *_ in HUBS:
            service.configure_site(session, clock=clock, location_code=code,
                                   handling_amount=HUB_HANDLING, opening_hours=every_day,
                                   service_radius_m=RADIUS_M, speed_kmh=18.0, detour_factor=1.3,
                                   service_seconds=180)
            for n in range(VEHICLES_PER_HUB):
                service.add_vehicle(session, location_code=code, name=f"van {n + 1}",
                                    capacity_grams=VEHICLE_CAPACITY, shift_start=time(8),
                                    shift_end=time(21), cost_per_km_amount=COST_PER_KM,
                                    cost_per_hour_amount=COST_PER_HOUR)
            for start in WINDOW_STARTS:
                service.create_windows(session, location_code=code, day=DELIVERY_DAY,
                                       window_minutes=120, capacity=WINDOW_CAPACITY,
                                       cutoff_minutes=120, first_start=time(start))
        catalog = {}
        for index, weight in enumerate(WEIGHTS):
            product = create_product(session, clock=clock, name=f"Item {index}",
                                     family_slug="bench",
                                     variants=[VariantSpec(f"SKU-{index}", "one", 5000, "GBP",
                                                           weight_grams=weight)])
            variant = variants_of(session, [product.id])[product.id][0].id
            catalog[index] = variant
            set_stock(session, clock=clock, location_code="central", variant_id=variant,
                      on_hand=100_000, actor="bench")
            for code, *_ in HUBS:
                if rng.random() < 0.67:
                    set_stock(session, clock=clock, location_code=code, variant_id=variant,
                              on_hand=100_000, actor="bench")
        customer = Customer(email="bench@example.com", password_hash="x", created_at=clock.now())
        session.add(customer)
        session.flush()
        return catalog


def _windows_by_hub(session) -> dict[tuple[int, int], int]:  # (location_id, start hour) -> id
    return {(w.location_id, w.starts_at.hour): w.id
            for w in session.scalars(select(DeliveryWindow))}


def run(count: int, seed: int, seconds_per_window: float, progress: Progress) -> dict:
    orders = invent_orders(count, seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'city.db'}"
        upgrade(url)
        db = Database(url)
        clock = FrozenClock(orders[0].at - timedelta(hours=1))
        catalog = seed_network(db, clock, seed)
        with db.transaction() as session:
            central_loc = session.scalar(select(Location).where(Location.code == "central"))
            hub_locs = list(session.scalars(select(Location).where(
                Location.kind == LocationKind.micro_hub).order_by(Location.id)))
            stock = {(s.location_id, s.variant_id) for s in session.scalars(
                select(StockLevel))}
            customer_id = session.scalar(select(Customer.id))
            windows = _windows_by_hub(session)
        central_site = R.CentralSite(central_loc.id, "central",
                                     R.GeoPoint(central_loc.latitude, central_loc.longitude),
                                     PICK_PACK, RATES)
        costs = R.VehicleCosts(COST_PER_KM, COST_PER_HOUR, 18.0, 1.3, 180)

        # Baselines, on the same orders, with the same cost model.
        all_central = 0
        nearest_hub = 0
        central_cost_of: dict[int, int] = {}
        for order in orders:
            weight = sum(WEIGHTS[i] * q for i, q in order.lines)
            quote = R.central_quote(central_site, destination=order.point, weight_grams=weight,
                                    at=order.at)
            assert quote is not None
            central_cost_of[order.index] = quote.cost_amount
            all_central += quote.cost_amount
            in_reach = sorted(
                (hub.id, R.GeoPoint(hub.latitude, hub.longitude)) for hub in hub_locs
                if R.GeoPoint(hub.latitude, hub.longitude).metres_to(order.point) <= RADIUS_M)
            nearest = min(in_reach, key=lambda h: h[1].metres_to(order.point), default=None)
            if nearest is not None and all((nearest[0], catalog[i]) in stock
                                           for i, _ in order.lines):
                nearest_hub += HUB_HANDLING + R.trip_quote(nearest[1], order.point, costs).amount
            else:
                nearest_hub += quote.cost_amount

        # Dropline: the real services, order by order, then the solver at cutoff.
        task = progress.add_task("decide + book", total=len(orders))
        with db.transaction() as session:
            order_rows = [Order(customer_id=customer_id, email="bench@example.com",
                                status=OrderStatus.paid, currency="GBP", subtotal_amount=5000,
                                discount_amount=0, shipping_amount=0, total_amount=5000,
                                refunded_amount=0, created_at=o.at, paid_at=o.at)
                          for o in orders]
            session.add_all(order_rows)
            session.flush()
            order_ids = {o.index: row.id for o, row in zip(orders, order_rows, strict=True)}
        paths = {"central": 0, "hub-window": 0}
        green_taken = 0
        rules_used: dict[str, int] = {}
        decide_started = timer.perf_counter()
        for order in orders:
            clock.current = order.at
            lines = [service.LineRequest(catalog[i], q) for i, q in order.lines]
            with db.transaction() as session:
                found = service.gather_options(
                    session, lines=lines, destination=service.Destination(order.point),
                    at=order.at, customer=service.CustomerFacts(
                        is_member=order.member_subsidy,
                        member_delivery_subsidy=order.member_subsidy))
                # The shopper accepts their preferred window, or a green one if offered.
                preferred = {windows[(loc.id, WINDOW_STARTS[order.preferred_window])]
                             for loc in hub_locs}
                acceptable = [o for o in found.options if o.path != "hub-window"
                              or not o.eligible or o.window_id in preferred
                              or (o.green and order.takes_green)]
                decision = R.decide(found.facts, acceptable, RULES)
                assert decision is not None
                paths[decision.path] += 1
                rules_used[decision.rule] = rules_used.get(decision.rule, 0) + 1
                if decision.path == "hub-window":
                    green_taken += decision.chosen.green
                    service.book_window(session, clock=clock,
                                        window_id=decision.chosen.window_id,
                                        order_id=order_ids[order.index],
                                        destination=order.point, weight_grams=found.weight_grams)
            progress.advance(task)
        decide_seconds = timer.perf_counter() - decide_started

        with db.transaction() as session:
            window_ids = list(session.scalars(select(DeliveryWindow.id).where(
                DeliveryWindow.booked > 0).order_by(DeliveryWindow.cutoff_at)))
        plan_task = progress.add_task("plan windows", total=len(window_ids))
        solver = PyVRPSolver()
        plan_started = timer.perf_counter()
        infeasible = 0
        for window_id in window_ids:
            with db.transaction() as session:
                window = session.get(DeliveryWindow, window_id)
                clock.current = window.cutoff_at
                planned = plan_window(session, clock=clock, window_id=window_id, solver=solver,
                                      max_seconds=seconds_per_window, seed=seed)
                infeasible += not planned.plan.feasible
            progress.advance(plan_task)
        plan_seconds = timer.perf_counter() - plan_started

        index_of = {oid: idx for idx, oid in order_ids.items()}
        with db.transaction() as session:
            route_cost = int(session.scalar(select(func.sum(RoutePlanRow.cost_amount))) or 0)
            km = int(session.scalar(select(func.sum(RoutePlanRow.distance_m))) or 0) / 1000
            routes = int(session.scalar(select(func.count()).select_from(RouteRow)) or 0)
            unassigned = [bid for ids in session.scalars(select(
                RoutePlanRow.unassigned_booking_ids)) for bid in ids]
            unassigned_orders = set(session.scalars(select(WindowBooking.order_id).where(
                WindowBooking.id.in_(unassigned)))) if unassigned else set()
            booked = {index_of[oid] for oid in session.scalars(select(WindowBooking.order_id))}
        # Vans (km and hours of the stored routes) and handling for the hub orders; carrier
        # shipping for the rest, and for any stop a plan could not fit.
        dropline = route_cost + HUB_HANDLING * paths["hub-window"]
        dropline += sum(central_cost_of[o.index] for o in orders if o.index not in booked)
        dropline += sum(central_cost_of[index_of[oid]] for oid in unassigned_orders)
        db.dispose()

    n = len(orders)
    per_order = {"all_central": all_central / n, "nearest_hub_no_windows": nearest_hub / n,
                 "dropline": dropline / n}
    cheapest_baseline = min(per_order["all_central"], per_order["nearest_hub_no_windows"])
    return {
        "orders": n, "hubs": len(HUBS), "windows_planned": len(window_ids), "seed": seed,
        "cost_per_order_pence": {k: round(v, 1) for k, v in per_order.items()},
        "dropline_saving_vs_all_central_pct": round(
            100 * (1 - per_order["dropline"] / per_order["all_central"]), 1),
        "dropline_saving_vs_nearest_hub_pct": round(
            100 * (1 - per_order["dropline"] / per_order["nearest_hub_no_windows"]), 1),
        "dropline_saving_vs_best_baseline_pct": round(
            100 * (1 - per_order["dropline"] / cheapest_baseline), 1),
        "dropline_is_cheapest": per_order["dropline"] < cheapest_baseline,
        "dropline_paths": {**paths, "green_windows_taken": green_taken,
                           "unassigned_to_carrier": len(unassigned_orders)},
        "decided_by": rules_used,
        "route_km": round(km, 1), "routes": routes,
        "plans_infeasible": infeasible,
        "seconds": {"decide_and_book": round(decide_seconds, 1),
                    "plan": round(plan_seconds, 1), "solver_per_window": seconds_per_window},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0, help="solver time per window")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        report = run(args.orders, args.seed, args.seconds, progress)
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
