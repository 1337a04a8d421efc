"""A simulated London city day: what each order costs to deliver, three ways, and what each
of Dropline's levers saves.

    python bench/city_day.py --json                  # 2,400 orders, 5 hubs, seed 7
    python bench/city_day.py --json --seed 11 --city-seed 3   # another day, another demand map

The same seeded orders (the shopping day before delivery; 75 % to London addresses spread over
the postcode districts, by default evenly, with ``--city-seed`` by a skewed demand map drawn
from that seed; the rest across the UK; 1-3 items of the demo catalog's weights; 10 % are a
household's second order to an address that already ordered that day) are costed as:

1. all central: pick/pack at Park Royal plus the carrier's rate for zone and weight;
2. nearest hub without windows: an order within a hub's radius whose nearest such hub has the
   stock (about two thirds of the SKUs, at random) is taken there and driven out on a trip of
   its own (hub, door, hub), else central;
3. Dropline: each order goes through the real services on a SQLite database
   (``gather_options`` and the rules, then ``book_window``); at cutoff every window is planned
   with PyVRP (``plan_window``) and costed from the stored routes (km and hours of the vans)
   plus the hub's handling per order; a stop the plan could not fit ships central.

Dropline's three levers, each switched off in its own pass over the same orders:

* steering: windows priced, made green or hidden from their marginal cost to the routes
  forming (``fulfilment.steering``), the marginal cost counting the stops the demand map
  still expects; each window's capacity from the vans and the time. Off: every open window at
  the standard price, green by the old rule, a fixed capacity of 80, quotes against the stops
  booked so far only.
* positioning: hub stock from ``fulfilment.positioning`` (the demand map of a past day with the
  same map; two days' cover, safety 1.3), each unit moved charged ``TRANSFER_PER_UNIT``. Off:
  the random two thirds of the SKUs, uncharged (as in the baselines).
* consolidation: a household's orders in one window are one stop; collection at a hub offered.
  Off: every order its own stop, no collection.

The shoppers' response is a stated, simple model, not a measurement: each has a preferred
window; 60 % are flexible and take the cheapest window offered (across the hubs that can serve
them), the rest take their preferred window if it is offered, else the cheapest; with steering
off the flexible ones take a green window when there is one (as before). 20 % of the shoppers
with a hub that stocks their order within ``COLLECT_RADIUS_M`` collect it when collection is
offered. The brand then takes the cheapest of central and the windows the shopper accepts.

Costs are the brand's, in pence, not the prices shoppers pay. Rich progress goes to stderr, the
figures to stdout. Times are never asserted on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time as timer
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from dropline.adapters.geocoding import LONDON_DISTRICTS
from dropline.adapters.routing import PyVRPSolver
from dropline.catalog.service import (
    VariantSpec,
    create_product,
    set_stock,
    take_stock,
    variants_of,
)
from dropline.clock import FrozenClock
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.fulfilment import positioning as P
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment import steering as S
from dropline.fulfilment.models import DeliveryWindow, RoutePlanRow, RouteRow, WindowBooking
from dropline.fulfilment.planning import plan_window
from dropline.locations.models import Location, LocationKind
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
WINDOW_SECONDS = 7200
WINDOW_CAPACITY = 80  # steering off: a fixed number per window
# Weights (g) of the demo catalog's parcels: travel spray, 50 ml, 100 ml, candles, refills,
# discovery sets, diffusers.
WEIGHTS = (90, 340, 520, 640, 1450, 180, 80, 780, 320, 900, 1100)
# The brand's rules: the two examples of the issue, as the demo brand configures them.
RULES = [R.Rule("members with delivery subsidy always get a window",
                (R.Condition("member_delivery_subsidy", "eq", True),), "prefer-hub"),
         R.Rule("orders under 2 km prefer the hub", (R.Condition("distance_to_hub_km", "lt", 2),),
                "prefer-hub", max_premium_amount=150)]
REPEAT_SHARE = 0.10  # a household's second order of the day, to the same address
COLLECT_SHARE, COLLECT_RADIUS_M = 0.20, 1500
TRANSFER_PER_UNIT = 15  # pence to move one unit from central to a hub (a shared trunk run)
MEMBER_SUBSIDY = 200
LEVERS = ("steering", "positioning", "consolidation")
err = Console(stderr=True)


@dataclass(frozen=True)
class SimOrder:
    index: int
    at: datetime
    point: R.GeoPoint
    lines: tuple[tuple[int, int], ...]  # (catalog index, quantity)
    preferred_window: int  # index into WINDOW_STARTS
    takes_green: bool  # flexible: takes the cheapest (steering) or a green window
    member_subsidy: bool
    would_collect: bool = False


def demand_weights(city_seed: int | None) -> list[tuple[str, float]]:
    """The demand map over the London districts: even by default, else skewed (lognormal
    weights, sigma 1) from ``city_seed``."""
    districts = sorted(LONDON_DISTRICTS)
    if city_seed is None:
        return [(d, 1.0) for d in districts]
    rng = random.Random(city_seed)
    return [(d, rng.lognormvariate(0.0, 1.0)) for d in districts]


def invent_orders(count: int, seed: int, city_seed: int | None = None) -> list[SimOrder]:
    rng = random.Random(seed)
    weights = demand_weights(city_seed)
    names = [d for d, _ in weights]
    cumulative = []
    total = 0.0
    for _, w in weights:
        total += w
        cumulative.append(total)
    shopping_day = datetime.combine(DELIVERY_DAY - timedelta(days=1), time(0), tzinfo=UTC)
    orders = []
    for index in range(count):
        if rng.random() < 0.75:
            if city_seed is None:
                district = rng.choice(names)
            else:
                district = rng.choices(names, cum_weights=cumulative)[0]
            lat, lon = LONDON_DISTRICTS[district]
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
    orders.sort(key=lambda o: o.at)
    # Households and collectors, from their own stream so the orders above stay as they were.
    extra = random.Random(seed * 7919 + 1)
    result: list[SimOrder] = []
    for order in orders:
        point = order.point
        if result and extra.random() < REPEAT_SHARE:
            point = extra.choice(result).point
        result.append(replace(order, point=point, would_collect=extra.random() < COLLECT_SHARE))
    return result


def seed_network(db: Database, clock: FrozenClock, seed: int, *, capacity: dict[str, int],
                 hub_stock: dict[tuple[str, int], int] | None) -> dict[int, int]:
    """Locations, costs, vehicles, windows and a catalog; returns catalog index -> variant.
    ``hub_stock`` (hub code, catalog index) -> units; None: two thirds at random, plenty."""
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
                                       window_minutes=120, capacity=capacity[code],
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
                # The same draws with positioning on or off, so the rest stays comparable.
                random_pick = rng.random() < 0.67
                units = (100_000 if random_pick else 0) if hub_stock is None \
                    else hub_stock.get((code, index), 0)
                if units:
                    set_stock(session, clock=clock, location_code=code, variant_id=variant,
                              on_hand=units, actor="bench")
        customer = Customer(email="bench@example.com", password_hash="x", created_at=clock.now())
        session.add(customer)
        session.flush()
        return catalog


def _windows_by_hub(session) -> dict[tuple[int, int], int]:  # (location_id, start hour) -> id
    return {(w.location_id, w.starts_at.hour): w.id
            for w in session.scalars(select(DeliveryWindow))}


def _hub_points() -> dict[str, R.GeoPoint]:
    return {code: R.GeoPoint(lat, lon) for code, _, lat, lon in HUBS}


def nearest_hub_in_reach(point: R.GeoPoint, radius: float = RADIUS_M) -> str | None:
    hubs = [(p.metres_to(point), code) for code, p in _hub_points().items()]
    metres, code = min(hubs)
    return code if metres <= radius else None


def demand_of(past: list[SimOrder]) -> tuple[dict[tuple[str, int], float], dict[str, float]]:
    """The demand map read off a past day: units per (hub, catalog index) and orders per hub,
    each order at its nearest hub within reach."""
    units: dict[tuple[str, int], float] = defaultdict(float)
    orders: dict[str, float] = defaultdict(float)
    for order in past:
        hub = nearest_hub_in_reach(order.point)
        if hub is None:
            continue
        orders[hub] += 1
        for index, quantity in order.lines:
            units[(hub, index)] += quantity
    return dict(units), dict(orders)


def positioned_stock(past: list[SimOrder]) -> tuple[dict[tuple[str, int], int], int]:
    """Hub stock from the positioning plan, and the units it moves."""
    units, _ = demand_of(past)
    daily = P.demand_map(units, past_days=1.0)
    targets = P.positioning_plan(daily, on_hand={}, cover_days=2.0, safety=1.3)
    moves = P.proposals(targets, central_code="central",
                        central_on_hand={i: 100_000 for i in range(len(WEIGHTS))},
                        factory_code=None, now=datetime(2026, 3, 7, tzinfo=UTC))
    stock = {(m.destination, m.variant_id): m.quantity for m in moves}
    return stock, sum(m.quantity for m in moves)


def baselines(orders: list[SimOrder], seed: int) -> tuple[dict[str, float], dict[int, int]]:
    """All central and nearest hub without windows (the random two-thirds stock)."""
    rng = random.Random(seed + 1)
    stocked = set()
    for index in range(len(WEIGHTS)):
        for code, *_ in HUBS:
            if rng.random() < 0.67:
                stocked.add((code, index))
    central_site = R.CentralSite(0, "central", R.GeoPoint(CENTRAL[2], CENTRAL[3]), PICK_PACK,
                                 RATES)
    costs = R.VehicleCosts(COST_PER_KM, COST_PER_HOUR, 18.0, 1.3, 180)
    hubs = _hub_points()
    all_central = nearest = 0
    central_cost_of = {}
    for order in orders:
        weight = sum(WEIGHTS[i] * q for i, q in order.lines)
        quote = R.central_quote(central_site, destination=order.point, weight_grams=weight,
                                at=order.at)
        assert quote is not None
        central_cost_of[order.index] = quote.cost_amount
        all_central += quote.cost_amount
        hub = nearest_hub_in_reach(order.point)
        if hub is not None and all((hub, i) in stocked for i, _ in order.lines):
            nearest += HUB_HANDLING + R.trip_quote(hubs[hub], order.point, costs).amount
        else:
            nearest += quote.cost_amount
    n = len(orders)
    return ({"all_central": all_central / n, "nearest_hub_no_windows": nearest / n},
            central_cost_of)


def run_dropline(orders: list[SimOrder], past: list[SimOrder], *, seed: int,
                 seconds_per_window: float, levers: dict[str, bool],
                 central_cost_of: dict[int, int], progress: Progress) -> dict:
    """One pass of the real services over the orders, with the given levers on."""
    steer, position, consolidate = (levers[k] for k in LEVERS)
    name = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in levers.items())
    costs = R.VehicleCosts(COST_PER_KM, COST_PER_HOUR, 18.0, 1.3, 180)
    hub_stock, moved = positioned_stock(past) if position else (None, 0)
    hub_stock = None if hub_stock is None else dict(hub_stock)
    # The demand map's expected stops per window: the past day's orders in each hub's reach
    # (that the hub would stock), spread over its windows.
    _, past_orders = demand_of(past)
    area = math.pi * RADIUS_M ** 2
    expected = {code: past_orders.get(code, 0.0) / len(WINDOW_STARTS) for code, *_ in HUBS}
    if steer:
        capacity = {code: S.window_capacity(vehicles=VEHICLES_PER_HUB,
                                            window_seconds=WINDOW_SECONDS, costs=costs,
                                            area_m2=area, expected_stops=expected[code])
                    for code in expected}
    else:
        capacity = dict.fromkeys(expected, WINDOW_CAPACITY)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'city.db'}"
        upgrade(url)
        db = Database(url)
        clock = FrozenClock(orders[0].at - timedelta(hours=1))
        catalog = seed_network(db, clock, seed, capacity=capacity,
                               hub_stock=None if hub_stock is None else
                               {k: v for k, v in hub_stock.items()})
        with db.transaction() as session:
            hub_locs = list(session.scalars(select(Location).where(
                Location.kind == LocationKind.micro_hub).order_by(Location.id)))
            code_of = {loc.id: loc.code for loc in hub_locs}
            customer_id = session.scalar(select(Customer.id))
            windows = _windows_by_hub(session)
            expected_stops = {wid: expected[code_of[loc]] for (loc, _), wid in windows.items()}
            order_rows = [Order(customer_id=customer_id, email="bench@example.com",
                                status=OrderStatus.paid, currency="GBP", subtotal_amount=5000,
                                discount_amount=0, shipping_amount=0, total_amount=5000,
                                refunded_amount=0, created_at=o.at, paid_at=o.at)
                          for o in orders]
            session.add_all(order_rows)
            session.flush()
            order_ids = {o.index: row.id for o, row in zip(orders, order_rows, strict=True)}

        task = progress.add_task(f"decide + book ({name})", total=len(orders))
        paths = {"central": 0, "hub-window": 0, "hub-collect": 0}
        green_taken = hidden_offers = 0
        rules_used: dict[str, int] = defaultdict(int)
        missed_promise = 0
        central_cost: dict[int, int] = {}
        parcels: dict[tuple, int] = {}  # (address, dispatch day) -> grams not yet left
        hub_units = joined = 0
        decide_started = timer.perf_counter()
        for order in orders:
            clock.current = order.at
            lines = [service.LineRequest(catalog[i], q) for i, q in order.lines]
            wants_collection = consolidate and order.would_collect and any(
                p.metres_to(order.point) <= COLLECT_RADIUS_M for p in _hub_points().values())
            local = order.at.astimezone(R.LONDON)
            parcel_key = (round(order.point.latitude, 5), round(order.point.longitude, 5),
                          local.date() + timedelta(days=0 if local.hour < 14 else 1))
            join = parcels.get(parcel_key) if consolidate else None
            steering = service.Steering(
                expected_stops=expected_stops if steer else {},
                member_subsidy_amount=MEMBER_SUBSIDY if steer else 0,
                consolidate=consolidate, collection=wants_collection,
                join_parcel_grams=join, price=steer) if steer or consolidate else None
            with db.transaction() as session:
                found = service.gather_options(
                    session, lines=lines, destination=service.Destination(order.point),
                    at=order.at, customer=service.CustomerFacts(
                        is_member=order.member_subsidy,
                        member_delivery_subsidy=order.member_subsidy), steering=steering)
                acceptable = shopper_accepts(order, found.options, windows, hub_locs,
                                             steered=steer)
                hidden_offers += sum(1 for o in found.options if o.offer and o.excluded)
                decision = R.decide(found.facts, acceptable, RULES)
                assert decision is not None
                missed_promise += not decision.promise_met
                chosen = decision.chosen
                if chosen.path != "central":
                    # The quote saw the units in this transaction: positioned stock runs down.
                    for line in lines:
                        assert take_stock(session, location_id=chosen.location_id,
                                          variant_id=line.variant_id, quantity=line.quantity)
                    hub_units += sum(line.quantity for line in lines)
                else:
                    central_cost[order.index] = chosen.cost_amount
                    joined += bool(chosen.offer)
                    parcels[parcel_key] = parcels.get(parcel_key, 0) + found.weight_grams
                paths[decision.path] += 1
                rules_used[decision.rule] += 1
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
        plan_task = progress.add_task(f"plan windows ({name})", total=len(window_ids))
        solver = PyVRPSolver()
        plan_started = timer.perf_counter()
        infeasible = 0
        stops = 0
        for window_id in window_ids:
            with db.transaction() as session:
                window = session.get(DeliveryWindow, window_id)
                clock.current = window.cutoff_at
                planned = plan_window(session, clock=clock, window_id=window_id, solver=solver,
                                      max_seconds=seconds_per_window, seed=seed,
                                      consolidate=consolidate)
                infeasible += not planned.plan.feasible
                stops += len(planned.problem.stops)
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
        db.dispose()
    unassigned_idx = {index_of[oid] for oid in unassigned_orders}
    # Vans (km and hours of the stored routes) and handling for the hub orders; carrier
    # shipping for the rest and for any stop a plan could not fit; units moved to the hubs.
    cost = {"central": sum(central_cost.values()),
            "hub-window": route_cost + HUB_HANDLING * paths["hub-window"],
            "hub-collect": HUB_HANDLING * paths["hub-collect"],
            "unassigned-to-carrier": sum(central_cost_of[i] for i in unassigned_idx),
            # Each unit sold from a hub was moved there once (the rest sells on later days).
            "hub-replenishment": TRANSFER_PER_UNIT * hub_units if position else 0}
    n = len(orders)
    return {
        "cost_per_order_pence": round(sum(cost.values()) / n, 1),
        "paths": {k: {"orders": v, "share_pct": round(100 * v / n, 1),
                      "cost_per_order_pence": round(cost[k] / v, 1) if v else None}
                  for k, v in paths.items()},
        "cost_pence": cost, "unassigned_to_carrier": len(unassigned_idx),
        "green_windows_taken": green_taken, "hidden_window_offers": hidden_offers,
        "decided_by": dict(rules_used), "route_km": round(km, 1), "routes": routes,
        "stops": stops, "plans_infeasible": infeasible, "windows_planned": len(window_ids),
        "units_positioned": moved, "units_sold_from_hubs": hub_units,
        "orders_joining_a_central_parcel": joined, "promise_missed": missed_promise,
        "window_capacity": capacity,
        "seconds": {"decide_and_book": round(decide_seconds, 1), "plan": round(plan_seconds, 1)},
    }


def run(count: int, seed: int, city_seed: int | None, seconds_per_window: float,
        progress: Progress, ablate: bool = True) -> dict:
    orders = invent_orders(count, seed, city_seed)
    # The demand map: a past day of the same city (another draw of the same map).
    past = invent_orders(count, seed + 1000, city_seed)
    per_order, central_cost_of = baselines(orders, seed)
    all_on = dict.fromkeys(LEVERS, True)
    passes = {"all": run_dropline(orders, past, seed=seed,
                                  seconds_per_window=seconds_per_window, levers=all_on,
                                  central_cost_of=central_cost_of, progress=progress)}
    if ablate:
        for lever in LEVERS:
            passes[f"{lever} off"] = run_dropline(
                orders, past, seed=seed, seconds_per_window=seconds_per_window,
                levers={**all_on, lever: False}, central_cost_of=central_cost_of,
                progress=progress)
    dropline = passes["all"]["cost_per_order_pence"]
    best = min(per_order.values())
    report = {
        "orders": len(orders), "hubs": len(HUBS), "seed": seed, "city_seed": city_seed,
        "cost_per_order_pence": {**{k: round(v, 1) for k, v in per_order.items()},
                                 "dropline": dropline},
        "dropline_saving_vs_best_baseline_pct": round(100 * (1 - dropline / best), 1),
        "dropline_saving_vs_all_central_pct": round(
            100 * (1 - dropline / per_order["all_central"]), 1),
        "dropline_saving_vs_nearest_hub_pct": round(
            100 * (1 - dropline / per_order["nearest_hub_no_windows"]), 1),
        "plans_infeasible": passes["all"]["plans_infeasible"],
        "orders_outside_promise": passes["all"]["unassigned_to_carrier"]
        + passes["all"]["promise_missed"],
        "dropline": passes["all"],
    }
    if ablate:
        report["saving_by_cause_pence_per_order"] = {
            lever: round(passes[f"{lever} off"]["cost_per_order_pence"] - dropline, 1)
            for lever in LEVERS}
        report["cost_per_order_with_one_lever_off_pence"] = {
            lever: passes[f"{lever} off"]["cost_per_order_pence"] for lever in LEVERS}
        report["passes_with_one_lever_off"] = {k: v for k, v in passes.items() if k != "all"}
    report["solver_seconds_per_window"] = seconds_per_window
    report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--city-seed", type=int, default=None,
                        help="draw a skewed demand map over the districts from this seed "
                             "(default: even)")
    parser.add_argument("--seconds", type=float, default=3.0, help="solver time per window")
    parser.add_argument("--no-ablation", action="store_true",
                        help="skip the three passes with one lever off")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        report = run(args.orders, args.seed, args.city_seed, args.seconds, progress,
                     ablate=not args.no_ablation)
    print(json.dumps(report, default=sorted) if args.json
          else json.dumps(report, indent=2, default=sorted))



def shopper_accepts(order: SimOrder, options: list[R.Option], windows: dict, hub_locs: list,
                    *, steered: bool) -> list[R.Option]:
    """The stated shopper model (module docstring): the options the shopper would accept;
    central is always acceptable, the brand chooses among the rest by cost."""
    central = [o for o in options if o.path == "central"]
    collect = [o for o in options if o.path == "hub-collect" and o.eligible]
    if collect:
        return central + collect
    offered = [o for o in options if o.path == "hub-window" and o.eligible]
    preferred_ids = {windows[(loc.id, WINDOW_STARTS[order.preferred_window])]
                     for loc in hub_locs}
    if not steered:
        return central + [o for o in offered
                          if o.window_id in preferred_ids or (o.green and order.takes_green)]
    if not offered:
        return central
    cheapest = min(o.price_amount or 0 for o in offered)
    cheapest_set = [o for o in offered if (o.price_amount or 0) == cheapest]
    if order.takes_green:
        return central + cheapest_set
    preferred = [o for o in offered if o.window_id in preferred_ids]
    return central + (preferred or cheapest_set)


if __name__ == "__main__":
    sys.exit(main())
