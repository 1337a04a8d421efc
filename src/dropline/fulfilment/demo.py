"""Demo step: Ember & Fig's fulfilment network. Costs for the Park Royal warehouse and a
carrier rate card, two cargo bikes and two-hourly delivery windows (today and tomorrow) at each
London micro-hub, the brand's two rules, and a production run from the Bermondsey
micro-factory restocking Hackney in 48 hours."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dropline.adapters.geocoding import LondonDistrictGeocoder
from dropline.catalog.models import Variant
from dropline.checkout_policy import customer_delivery_facts, orders_in_live_drops
from dropline.demo import DemoContext, demo_step
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment.batch import decide_order, undecided_order_ids
from dropline.fulfilment.models import MovementKind
from dropline.locations.models import Location, LocationKind

RATES = (
    R.CarrierRate("london", 40, 1000, 460, 1), R.CarrierRate("london", 40, 2000, 540, 1),
    R.CarrierRate("london", 40, 30_000, 890, 1),
    R.CarrierRate("regional", 200, 1000, 590, 1), R.CarrierRate("regional", 200, 2000, 690, 1),
    R.CarrierRate("regional", 200, 30_000, 1190, 1),
    R.CarrierRate("national", 1200, 1000, 690, 2), R.CarrierRate("national", 1200, 2000, 790, 2),
    R.CarrierRate("national", 1200, 30_000, 1390, 2),
)
RULES = [
    {"name": "members with delivery subsidy always get a window", "action": "prefer-hub",
     "conditions": [{"field": "member_delivery_subsidy", "op": "eq", "value": True}]},
    {"name": "orders under 2 km prefer the hub", "action": "prefer-hub",
     "max_premium_amount": 150,
     "conditions": [{"field": "distance_to_hub_km", "op": "lt", "value": 2}]},
]
EVERY_DAY = {d: ["08:00", "20:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@demo_step("fulfilment", order=600, label="Fulfilment network")
def seed_fulfilment(ctx: DemoContext) -> str:
    session, clock = ctx.session, ctx.clock
    locations = {loc.id: loc for loc in session.scalars(
        select(Location).where(Location.id.in_(list(ctx.ids.locations.values()))))}
    by_kind: dict[LocationKind, list[Location]] = {}
    for location in locations.values():
        by_kind.setdefault(location.kind, []).append(location)
    for central in by_kind.get(LocationKind.central_warehouse, []):
        service.configure_site(session, clock=clock, location_code=central.code,
                               handling_amount=150, dispatch_cutoff_hour=14)
    service.set_rate_card(session, rates=RATES)
    local_today = ctx.now.astimezone(ZoneInfo("Europe/London")).date()
    hubs = sorted(by_kind.get(LocationKind.micro_hub, []), key=lambda loc: loc.code)
    windows = 0
    for hub in hubs:
        service.configure_site(session, clock=clock, location_code=hub.code,
                               handling_amount=80, opening_hours=EVERY_DAY,
                               service_radius_m=3000, speed_kmh=16.0, detour_factor=1.3,
                               service_seconds=180, window_price_amount=395,
                               green_price_amount=195)
        for number in (1, 2):
            service.add_vehicle(session, location_code=hub.code, name=f"cargo bike {number}",
                                capacity_grams=60_000, shift_start=time(8), shift_end=time(20),
                                cost_per_km_amount=20, cost_per_hour_amount=1600)
        for day in (local_today, local_today + timedelta(days=1)):
            windows += len(service.create_windows(session, location_code=hub.code, day=day,
                                                  window_minutes=120, capacity=40,
                                                  cutoff_minutes=120))
    service.replace_rules(session, clock=clock, rules=RULES, actor="demo")

    runs = 0
    factory = next(iter(by_kind.get(LocationKind.micro_factory, [])), None)
    candle = session.scalar(select(Variant.id).where(Variant.sku == "EF-C-FIG-220"))
    if factory is not None and candle is not None and hubs:
        service.start_movement(session, clock=clock, kind=MovementKind.production,
                               source_code=factory.code, destination_code=hubs[0].code,
                               variant_id=candle, quantity=24, lead_hours=48)
        runs = 1
    ctx.summary["fulfilment"] = (f"{len(hubs)} hubs, {2 * len(hubs)} cargo bikes, "
                                 f"{windows} windows, {len(RULES)} rules")
    return f"{len(hubs)} hubs with bikes and {windows} windows, {runs} production run"


@demo_step("fulfilment-decisions", order=995, label="Every paid order decided")
def seed_decisions(ctx: DemoContext) -> str:
    """Runs the batch decider (``fulfilment.batch``) over the seeded orders, as the worker
    would: after this every paid order has a decision and an allocation."""
    geocoder = LondonDistrictGeocoder()
    ids = undecided_order_ids(ctx.session, at=ctx.clock.now(), held_back=orders_in_live_drops)
    paths: dict[str, int] = {}
    for order_id in ids:
        row = decide_order(ctx.session, clock=ctx.clock, order_id=order_id, geocoder=geocoder,
                           customer_facts=customer_delivery_facts)
        if row is not None:
            paths[row.path] = paths.get(row.path, 0) + 1
    shares = ", ".join(f"{path} {count}" for path, count in sorted(paths.items()))
    ctx.summary["decisions"] = f"{sum(paths.values())} orders decided after the fact ({shares})"
    return f"{sum(paths.values())} orders decided ({shares})"
