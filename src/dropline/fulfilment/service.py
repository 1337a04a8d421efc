"""Fulfilment use cases: the network's costs, the brand's rules, the per-order decision,
delivery windows and their bookings, and stock movements. Session first, keyword-only
arguments after; flush, never commit. Route planning at cutoff lives in ``planning.py``.

The checkout seam (the checkout flow calls these inside its own transaction):

    decision = decide_fulfilment(session, lines=[LineRequest(variant_id, qty)],
                                 destination=point, customer_id=..., at=clock.now())
    # decision.path is "central", "hub-window" or "pop-up": carry it as the order's
    # fulfilment_path and in the order events' payload.
    if decision.path == "hub-window":
        book_window(session, clock=clock, window_id=decision.chosen.window_id,
                    order_id=order.id, destination=point, weight_grams=...)
    record_decision(session, clock=clock, decision=decision, order_id=order.id, ...)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dropline.catalog.models import Variant
from dropline.catalog.service import get_location_by_code, take_stock
from dropline.clock import Clock
from dropline.errors import AlreadyExists, InvalidInput, InvalidState, NotFound, OutOfStock
from dropline.events.service import record_event
from dropline.fulfilment import rules as R
from dropline.fulfilment import steering as S
from dropline.fulfilment.errors import AddressNotFound, WindowClosed, WindowFull
from dropline.fulfilment.models import (
    BookingStatus,
    CarrierRateRow,
    DeliveryWindow,
    FulfilmentDecisionRow,
    FulfilmentRuleRow,
    FulfilmentSite,
    MovementKind,
    MovementStatus,
    StockMovement,
    Vehicle,
    WindowBooking,
    WindowStatus,
)
from dropline.fulfilment.ports import Geocoder
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.money import format_money
from dropline.orders.models import OrderLine

# Windows further ahead than this are not offered (the shopper picks from the next few days).
OFFER_HORIZON = timedelta(days=3)


# --- plain inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    variant_id: int
    quantity: int


@dataclass(frozen=True)
class CustomerFacts:
    """What the rules may know about the shopper; the checkout fills it from memberships."""

    is_member: bool = False
    member_delivery_subsidy: bool = False


@dataclass(frozen=True)
class Steering:
    """Slot steering for one quote (``dropline.fulfilment.steering``): the demand map's
    expected bookings per window (window id -> stops expected by cutoff; None: the same hub's
    windows at the same hour on the same weekday over the last four weeks, averaged), the
    member's delivery subsidy taken off window prices, and whether a household's second order
    shares its first order's stop. ``collection``: the shopper asked to collect from a hub.
    ``price`` False keeps the standard window prices (consolidation and collection only)."""

    expected_stops: Mapping[int, float] | None = None
    member_subsidy_amount: int = 0
    consolidate: bool = True
    collection: bool = False
    # Consolidation at the warehouse: the weight of a parcel to this address that has not
    # left yet (the checkout finds it); the order may join it.
    join_parcel_grams: int | None = None
    price: bool = True


@dataclass(frozen=True)
class Destination:
    point: R.GeoPoint
    label: str = ""  # the postcode, for route sheets
    approximate: bool = False  # a district centre, not the door


def resolve_destination(*, geocoder: Geocoder, latitude: float | None = None,
                        longitude: float | None = None, postcode: str | None = None
                        ) -> Destination:
    """A point from latitude/longitude (preferred), else from a postcode via the geocoder."""
    if (latitude is None) != (longitude is None):
        raise InvalidInput("give both latitude and longitude, or a postcode",
                           field="latitude" if latitude is None else "longitude")
    if latitude is not None and longitude is not None:
        try:
            return Destination(R.GeoPoint(latitude, longitude), label=(postcode or "")[:20])
        except ValueError as exc:
            raise InvalidInput(str(exc), field="latitude") from None
    if not postcode:
        raise InvalidInput("give a postcode, or latitude and longitude", field="postcode")
    point = geocoder.locate(postcode)
    if point is None:
        raise AddressNotFound(
            f"postcode {postcode[:12]!r} is not in the built-in London district table; send "
            "latitude and longitude instead", field="postcode")
    return Destination(point, label=postcode.strip().upper()[:20], approximate=True)


# --- the network ----------------------------------------------------------------------------


def configure_site(session: Session, *, clock: Clock, location_code: str,
                   **values: Any) -> FulfilmentSite:
    """Creates or updates a location's fulfilment settings (see ``FulfilmentSite``)."""
    location = get_location_by_code(session, location_code)
    if "opening_hours" in values:
        try:
            hours = R.OpeningHours.from_data(values["opening_hours"],
                                             values.get("timezone", "Europe/London"))
        except (ValueError, KeyError) as exc:
            raise InvalidInput(f"opening_hours: {exc}", field="opening_hours") from None
        values["opening_hours"] = hours.to_data()
    site = session.get(FulfilmentSite, location.id)
    if site is None:
        site = FulfilmentSite(location_id=location.id, updated_at=clock.now())
        session.add(site)
    for key, value in values.items():
        if not hasattr(FulfilmentSite, key) or key == "location_id":
            raise InvalidInput(f"unknown site setting {key!r}", field=key)
        setattr(site, key, value)
    site.updated_at = clock.now()
    session.flush()
    return site


def set_rate_card(session: Session, *, rates: Sequence[R.CarrierRate]) -> list[CarrierRateRow]:
    """Replaces the carrier's rate card."""
    cells = {(r.max_distance_km, r.max_weight_grams) for r in rates}
    if len(cells) != len(rates):
        raise InvalidInput("two rates share a distance band and weight step", field="rates")
    session.execute(delete(CarrierRateRow))
    rows = [CarrierRateRow(zone=r.zone, max_distance_km=r.max_distance_km,
                           max_weight_grams=r.max_weight_grams, amount=r.amount,
                           transit_days=r.transit_days) for r in rates]
    session.add_all(rows)
    session.flush()
    return rows


def rate_card(session: Session) -> tuple[R.CarrierRate, ...]:
    rows = session.scalars(select(CarrierRateRow).order_by(CarrierRateRow.max_distance_km,
                                                           CarrierRateRow.max_weight_grams))
    return tuple(R.CarrierRate(r.zone, r.max_distance_km, r.max_weight_grams, r.amount,
                               r.transit_days) for r in rows)


def add_vehicle(session: Session, *, location_code: str, name: str, capacity_grams: int,
                shift_start: time, shift_end: time, cost_per_km_amount: int,
                cost_per_hour_amount: int) -> Vehicle:
    location = get_location_by_code(session, location_code)
    if location.kind is not LocationKind.micro_hub:
        raise InvalidInput(f"{location_code} is a {location.kind.value}; vehicles belong to "
                           "micro-hubs", field="location")
    if shift_start >= shift_end:
        raise InvalidInput("the shift must end after it starts", field="shift_end")
    vehicle = Vehicle(location_id=location.id, name=name, capacity_grams=capacity_grams,
                      shift_start=shift_start, shift_end=shift_end,
                      cost_per_km_amount=cost_per_km_amount,
                      cost_per_hour_amount=cost_per_hour_amount)
    session.add(vehicle)
    session.flush()
    return vehicle


def list_vehicles(session: Session, *, location_id: int | None = None) -> list[Vehicle]:
    query = select(Vehicle).order_by(Vehicle.id)
    if location_id is not None:
        query = query.where(Vehicle.location_id == location_id)
    return list(session.scalars(query))


def vehicle_costs(site: FulfilmentSite, vehicles: Sequence[Vehicle]) -> R.VehicleCosts | None:
    """What one more stop costs a hub, priced at its dearest active vehicle (a quote that the
    planned routes can only beat)."""
    active = [v for v in vehicles if v.active]
    if not active:
        return None
    return R.VehicleCosts(
        cost_per_km_amount=max(v.cost_per_km_amount for v in active),
        cost_per_hour_amount=max(v.cost_per_hour_amount for v in active),
        speed_kmh=site.speed_kmh, detour_factor=site.detour_factor,
        service_seconds=site.service_seconds)


# --- rules ----------------------------------------------------------------------------------


def load_rules(session: Session) -> list[R.Rule]:
    rows = session.scalars(select(FulfilmentRuleRow).order_by(FulfilmentRuleRow.position))
    return [R.parse_rule({"name": r.name, "conditions": r.conditions, "action": r.action,
                          "max_premium_amount": r.max_premium_amount, "enabled": r.enabled})
            for r in rows]


def replace_rules(session: Session, *, clock: Clock, rules: Sequence[Mapping[str, Any]],
                  actor: str) -> list[R.Rule]:
    """Replaces the brand's rules with ``rules``, in order; all are validated first, so a bad
    rule changes nothing."""
    parsed = []
    for index, data in enumerate(rules):
        try:
            parsed.append(R.parse_rule(data))
        except ValueError as exc:
            raise InvalidInput(str(exc), field=f"rules[{index}]") from None
    names = [rule.name for rule in parsed]
    if len(set(names)) != len(names):
        raise InvalidInput("rule names must be distinct", field="rules")
    session.execute(delete(FulfilmentRuleRow))
    session.flush()
    now = clock.now()
    for position, rule in enumerate(parsed, start=1):
        data = R.rule_to_data(rule)
        session.add(FulfilmentRuleRow(position=position, updated_at=now, **data))
    session.flush()
    record_event(session, clock=clock, type="fulfilment.rules_changed", subject_type="shop",
                 subject_id="fulfilment", payload={"rules": names, "actor": actor})
    return parsed


# --- options and the decision ---------------------------------------------------------------


@dataclass(frozen=True)
class HubContext:
    location: Location
    site: FulfilmentSite
    costs: R.VehicleCosts | None


@dataclass(frozen=True)
class OptionSet:
    facts: R.OrderFacts
    options: list[R.Option]
    weight_grams: int
    destination: Destination | None
    currency: str = "GBP"
    hubs: dict[int, HubContext] = field(default_factory=dict)


def _weights(session: Session, lines: Sequence[LineRequest]) -> tuple[int, int, str]:
    if not lines:
        raise InvalidInput("no lines: add something first", field="lines")
    quantities: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.quantity <= 0:
            raise InvalidInput("quantities must be positive", field="lines")
        quantities[line.variant_id] += line.quantity
    variants = {v.id: v for v in session.scalars(
        select(Variant).where(Variant.id.in_(list(quantities))))}
    missing = sorted(set(quantities) - set(variants))
    if missing:
        raise NotFound(f"variant {missing[0]} not found", field="lines")
    weight = sum(variants[vid].weight_grams * q for vid, q in quantities.items())
    subtotal = sum(variants[vid].price_amount * q for vid, q in quantities.items())
    currency = next(iter(variants.values())).currency
    # A weightless catalog still makes a parcel: every order weighs at least a gram.
    return max(weight, 1), subtotal, currency


def gather_options(session: Session, *, lines: Sequence[LineRequest],
                   destination: Destination | None, at: datetime,
                   customer: CustomerFacts = CustomerFacts(),
                   required_by: datetime | None = None,
                   steering: Steering | None = None) -> OptionSet:
    """Every way the order could go, each priced, with the reason any cannot be chosen.
    With ``steering``, hub windows are priced, made green or hidden from their marginal cost
    to the routes forming (``steering.offer_windows``), and collection at a hub is listed
    when the shopper asked for it.

    ``destination`` None (an address no geocoder knows) leaves central shipping at its
    farthest zone as the only option."""
    weight, subtotal, currency = _weights(session, lines)
    wanted: dict[int, int] = defaultdict(int)
    for line in lines:
        wanted[line.variant_id] += line.quantity

    sites = {
        location.id: (location, site)
        for location, site in session.execute(
            select(Location, FulfilmentSite)
            .join(FulfilmentSite, FulfilmentSite.location_id == Location.id)
            .where(Location.active.is_(True),
                   Location.kind.in_([LocationKind.central_warehouse, LocationKind.micro_hub]))
            .order_by(Location.id))
    }
    on_hand: dict[tuple[int, int], int] = {
        (row.location_id, row.variant_id): row.on_hand
        for row in session.scalars(select(StockLevel).where(
            StockLevel.location_id.in_(list(sites)), StockLevel.variant_id.in_(list(wanted))))
    }

    def in_stock(location_id: int) -> bool:
        return all(on_hand.get((location_id, vid), 0) >= q for vid, q in wanted.items())

    options: list[R.Option] = []
    rates = rate_card(session)
    central_zone: str | None = None
    for location, site in sites.values():
        if location.kind is not LocationKind.central_warehouse:
            continue
        options.append(_central_option(location, site, rates, destination, weight, at,
                                       in_stock(location.id)))
        if options[-1].breakdown:
            central_zone = options[-1].breakdown[1][0].removeprefix("carrier ")
        if (steering is not None and steering.consolidate and steering.join_parcel_grams
                and destination is not None and location.latitude is not None
                and location.longitude is not None and in_stock(location.id)):
            joined = R.joined_central_quote(
                R.CentralSite(location.id, location.code,
                              R.GeoPoint(location.latitude, location.longitude),
                              site.handling_amount, tuple(rates), site.dispatch_cutoff_hour,
                              site.timezone),
                destination=destination.point, parcel_grams=steering.join_parcel_grams,
                weight_grams=weight, at=at)
            if joined is not None:
                options.append(R.Option(
                    "central", location.id, location.code, joined.cost_amount,
                    joined.promise_at, breakdown=(("pick/pack", joined.pick_pack_amount),
                                                  ("carrier, added weight",
                                                   joined.carrier_amount)),
                    offer="joins the parcel to this address that has not left yet"))

    hubs: dict[int, HubContext] = {}
    nearest_km: float | None = None
    if destination is not None:
        hub_sites = [(loc, site) for loc, site in sites.values()
                     if loc.kind is LocationKind.micro_hub and loc.latitude is not None
                     and loc.longitude is not None]
        vehicles: dict[int, list[Vehicle]] = defaultdict(list)
        for vehicle in session.scalars(select(Vehicle).where(
                Vehicle.location_id.in_([loc.id for loc, _ in hub_sites]))):
            vehicles[vehicle.location_id].append(vehicle)
        windows = list(session.scalars(
            select(DeliveryWindow).where(
                DeliveryWindow.location_id.in_([loc.id for loc, _ in hub_sites]),
                DeliveryWindow.status == WindowStatus.open, DeliveryWindow.cutoff_at > at,
                DeliveryWindow.starts_at <= at + OFFER_HORIZON)
            .order_by(DeliveryWindow.starts_at, DeliveryWindow.id)))
        booked = _booked_points([w.id for w in windows if w.booked > 0], session)
        if steering is not None and steering.expected_stops is None:
            steering = replace(steering, expected_stops=expected_window_stops(session, windows))
        for location, site in hub_sites:
            hub_point = R.GeoPoint(location.latitude, location.longitude)  # type: ignore[arg-type]
            km = hub_point.metres_to(destination.point) / 1000
            nearest_km = km if nearest_km is None else min(nearest_km, km)
            costs = vehicle_costs(site, vehicles[location.id])
            hubs[location.id] = HubContext(location, site, costs)
            hub_windows = [w for w in windows if w.location_id == location.id]
            if steering is None or not steering.price:
                options.extend(_hub_options(
                    location, site, costs, hub_point, destination, km, at,
                    in_stock(location.id), hub_windows, booked))
            else:
                options.extend(_steered_options(
                    location, site, costs, hub_point, destination, km, at,
                    in_stock(location.id), hub_windows, booked,
                    len([v for v in vehicles[location.id] if v.active]), steering, customer))
            if steering is not None and steering.collection:
                options.append(_collection_option(location, site, destination, km, at,
                                                  in_stock(location.id), hub_windows))

    facts = R.OrderFacts(
        weight_grams=weight, subtotal_amount=subtotal,
        distance_to_hub_km=None if nearest_km is None else round(nearest_km, 3),
        is_member=customer.is_member, member_delivery_subsidy=customer.member_delivery_subsidy,
        central_zone=central_zone, required_by=required_by)
    return OptionSet(facts, options, weight, destination, currency, hubs)


def expected_window_stops(session: Session, windows: Sequence[DeliveryWindow],
                          weeks: int = 4) -> dict[int, float]:
    """The demand map for steering, from history: each window's expected bookings are the
    mean of what the same hub's windows starting the same time 1..``weeks`` weeks earlier took
    (within an hour, so a clock change does not lose them); 0 without history."""
    if not windows:
        return {}
    earliest = min(w.starts_at for w in windows) - timedelta(weeks=weeks, hours=1)
    past = session.execute(select(DeliveryWindow.location_id, DeliveryWindow.starts_at,
                                  DeliveryWindow.booked).where(
        DeliveryWindow.location_id.in_({w.location_id for w in windows}),
        DeliveryWindow.starts_at >= earliest,
        DeliveryWindow.starts_at < max(w.starts_at for w in windows))).all()
    result = {}
    for window in windows:
        counts = []
        for k in range(1, weeks + 1):
            when = window.starts_at - timedelta(weeks=k)
            match = [booked for loc, starts, booked in past if loc == window.location_id
                     and abs((starts - when).total_seconds()) <= 3600]
            if match:
                counts.append(match[0])
        result[window.id] = sum(counts) / len(counts) if counts else 0.0
    return result


def _booked_points(window_ids: list[int], session: Session) -> dict[int, list[R.GeoPoint]]:
    points: dict[int, list[R.GeoPoint]] = defaultdict(list)
    if window_ids:
        rows = session.execute(
            select(WindowBooking.window_id, WindowBooking.latitude, WindowBooking.longitude)
            .where(WindowBooking.window_id.in_(window_ids),
                   WindowBooking.status == BookingStatus.booked)
            .order_by(WindowBooking.id))
        for window_id, lat, lon in rows:
            points[window_id].append(R.GeoPoint(lat, lon))
    return points


def _central_option(location: Location, site: FulfilmentSite, rates: Sequence[R.CarrierRate],
                    destination: Destination | None, weight: int, at: datetime,
                    stocked: bool) -> R.Option:
    if location.latitude is None or location.longitude is None:
        quote = None
    else:
        central = R.CentralSite(location.id, location.code,
                                R.GeoPoint(location.latitude, location.longitude),
                                site.handling_amount, tuple(rates), site.dispatch_cutoff_hour,
                                site.timezone)
        # Unknown address: price it as the farthest zone the card has.
        point = destination.point if destination else None
        if point is None:
            far = max((r.max_distance_km for r in rates), default=0.0)
            quote = _farthest_quote(central, far, weight, at)
        else:
            quote = R.central_quote(central, destination=point, weight_grams=weight, at=at)
    if quote is None:
        return R.Option("central", location.id, location.code, 0, at,
                        excluded="no carrier rate for this weight and distance")
    return R.Option(
        "central", location.id, location.code, quote.cost_amount, quote.promise_at,
        breakdown=(("pick/pack", quote.pick_pack_amount), (f"carrier {quote.zone}",
                                                           quote.carrier_amount)),
        excluded="" if stocked else "not in stock at the warehouse")


def _farthest_quote(central: R.CentralSite, far_km: float, weight: int,
                    at: datetime) -> R.CentralQuote | None:
    rate = R.carrier_rate(central.rates, distance_km=far_km, weight_grams=weight)
    if rate is None:
        return None
    # A zone's promise depends only on its transit days: quote at the warehouse's own point
    # with a card holding just that rate.
    fake = R.CentralSite(central.location_id, central.code, central.point,
                         central.pick_pack_amount, (rate,), central.dispatch_cutoff_hour,
                         central.timezone)
    return R.central_quote(fake, destination=central.point, weight_grams=weight, at=at)


def _hub_options(location: Location, site: FulfilmentSite, costs: R.VehicleCosts | None,
                 hub_point: R.GeoPoint, destination: Destination, km: float, at: datetime,
                 stocked: bool, windows: Sequence[DeliveryWindow],
                 booked: Mapping[int, list[R.GeoPoint]]) -> list[R.Option]:
    def excluded(reason: str) -> list[R.Option]:
        return [R.Option("hub-window", location.id, location.code, 0, at, excluded=reason)]

    if costs is None:
        return excluded("no vehicles at this hub")
    if km * 1000 > site.service_radius_m:
        return excluded(f"{km:.1f} km away, beyond its {site.service_radius_m / 1000:.1f} km "
                        "radius")
    if not stocked:
        return excluded("not in stock at this hub")
    open_windows = [w for w in windows if w.booked < w.capacity]
    if not open_windows:
        return excluded("no window left that can take the order")
    trip = R.trip_quote(hub_point, destination.point, costs)
    options = []
    for window in open_windows:
        insertion = R.insertion_quote(hub_point, booked.get(window.id, []), destination.point,
                                      costs)
        price, green = R.window_price(insertion, trip=trip,
                                      base_price_amount=site.window_price_amount,
                                      green_price_amount=site.green_price_amount)
        options.append(R.Option(
            "hub-window", location.id, location.code,
            site.handling_amount + insertion.amount, window.ends_at,
            breakdown=(("handling", site.handling_amount), ("route insertion",
                                                            insertion.amount)),
            window_id=window.id, window_starts_at=window.starts_at, price_amount=price,
            green=green))
    return options


def _steered_options(location: Location, site: FulfilmentSite, costs: R.VehicleCosts | None,
                     hub_point: R.GeoPoint, destination: Destination, km: float, at: datetime,
                     stocked: bool, windows: Sequence[DeliveryWindow],
                     booked: Mapping[int, list[R.GeoPoint]], vehicles: int,
                     steering: Steering, customer: CustomerFacts) -> list[R.Option]:
    """The hub's windows priced by slot steering; a hidden window is listed as excluded with
    the reason, so the decision record shows the whole offered set."""
    def excluded(reason: str) -> list[R.Option]:
        return [R.Option("hub-window", location.id, location.code, 0, at, excluded=reason)]

    if costs is None:
        return excluded("no vehicles at this hub")
    if km * 1000 > site.service_radius_m:
        return excluded(f"{km:.1f} km away, beyond its {site.service_radius_m / 1000:.1f} km "
                        "radius")
    if not stocked:
        return excluded("not in stock at this hub")
    if not windows:
        return excluded("no window left that can take the order")
    trip = R.trip_quote(hub_point, destination.point, costs)
    area = math.pi * float(site.service_radius_m) ** 2
    quotes = []
    for window in windows:
        points = booked.get(window.id, [])
        insertion = R.insertion_quote(hub_point, points, destination.point, costs)
        expected = (steering.expected_stops or {}).get(window.id, 0.0)
        forecast = None
        if expected > len(points):
            per_route = max(1, window.capacity // max(vehicles, 1))
            forecast = S.density_quote(hub_point, destination.point, costs,
                                       expected_stops=expected, area_m2=area,
                                       stops_per_route=per_route)
        same = steering.consolidate and any(
            p.metres_to(destination.point) < S.SAME_ADDRESS_METRES for p in points)
        quotes.append(S.WindowQuote(window.id, location.code, insertion, forecast,
                                    window.capacity - window.booked, same))
    subsidy = steering.member_subsidy_amount if customer.member_delivery_subsidy else 0
    offers = S.offer_windows(quotes, trip=trip, base_price=site.window_price_amount,
                             green_price=site.green_price_amount, member_subsidy=subsidy)
    by_id = {w.id: w for w in windows}
    options = []
    for offer in offers:
        window = by_id[offer.window_id]
        cost = site.handling_amount + offer.marginal_amount
        options.append(R.Option(
            "hub-window", location.id, location.code, cost, window.ends_at,
            breakdown=(("handling", site.handling_amount),
                       ("route marginal", offer.marginal_amount)),
            window_id=window.id, window_starts_at=window.starts_at,
            price_amount=offer.price_amount, green=offer.green, offer=offer.reason,
            excluded=offer.reason if offer.hidden else ""))
    return options


def _collection_option(location: Location, site: FulfilmentSite, destination: Destination,
                       km: float, at: datetime, stocked: bool,
                       windows: Sequence[DeliveryWindow]) -> R.Option:
    """Collection at the hub, ready by the end of its next window: costs the hub's handling,
    no driving."""
    if km * 1000 > site.service_radius_m:
        return R.Option("hub-collect", location.id, location.code, 0, at,
                        excluded=f"{km:.1f} km away, beyond its collection radius")
    if not stocked:
        return R.Option("hub-collect", location.id, location.code, 0, at,
                        excluded="not in stock at this hub")
    ready = min((w.ends_at for w in windows), default=None)
    if ready is None:
        return R.Option("hub-collect", location.id, location.code, 0, at,
                        excluded="the hub has no opening left to hand it over")
    return R.Option("hub-collect", location.id, location.code, site.handling_amount, ready,
                    breakdown=(("handling", site.handling_amount),), price_amount=0,
                    offer="collect free from the hub")


def decide_fulfilment(session: Session, *, lines: Sequence[LineRequest],
                      destination: Destination | R.GeoPoint | None, customer_id: int | None,
                      at: datetime, rules: Sequence[R.Rule] | None = None,
                      customer: CustomerFacts = CustomerFacts(),
                      required_by: datetime | None = None) -> R.Decision:
    """The checkout's call: central or which hub window, by cost, stock, promise and the
    brand's rules (the stored ones unless ``rules`` is given), with the explanation. Reads
    only; raises OutOfStock when no location holds the lines. ``customer_id`` is for the
    caller's record (``record_decision``); the rules see ``customer``."""
    return decide_with_options(session, lines=lines, destination=destination, at=at,
                               rules=rules, customer=customer, required_by=required_by)[0]


def decide_with_options(session: Session, *, lines: Sequence[LineRequest],
                        destination: Destination | R.GeoPoint | None, at: datetime,
                        rules: Sequence[R.Rule] | None = None,
                        customer: CustomerFacts = CustomerFacts(),
                        required_by: datetime | None = None,
                        steering: Steering | None = None) -> tuple[R.Decision, OptionSet]:
    if isinstance(destination, R.GeoPoint):
        destination = Destination(destination)
    option_set = gather_options(session, lines=lines, destination=destination, at=at,
                                customer=customer, required_by=required_by, steering=steering)
    rules = load_rules(session) if rules is None else rules
    decision = R.decide(option_set.facts, option_set.options, rules, option_set.currency)
    if decision is None:
        reasons = "; ".join(sorted({f"{o.location_code}: {o.excluded}"
                                    for o in option_set.options})) or "no fulfilment sites"
        raise OutOfStock(f"no location can fulfil this order ({reasons})")
    return decision, option_set


def window_options(session: Session, options: Sequence[R.Option]) -> list[dict[str, Any]]:
    """The hub windows a shopper may pick, cheapest first, with what is left in each."""
    eligible = [o for o in options if o.path == "hub-window" and o.eligible and o.window_id]
    windows = {w.id: w for w in session.scalars(select(DeliveryWindow).where(
        DeliveryWindow.id.in_([o.window_id for o in eligible])))}
    rows = []
    for option in sorted(eligible, key=lambda o: (o.price_amount or 0, o.promise_at)):
        window = windows[option.window_id]  # type: ignore[index]
        rows.append({
            "window_id": window.id, "hub": option.location_code,
            "starts_at": window.starts_at, "ends_at": window.ends_at,
            "price_amount": option.price_amount or 0, "cost_amount": option.cost_amount,
            "green": option.green,
            "label": option.offer or ("green: a van already goes nearby" if option.green
                                      else ""),
            "remaining": window.capacity - window.booked,
        })
    return rows


def order_weight(session: Session, order_id: int) -> int:
    """Packed weight of an order's lines, at least a gram."""
    weight = session.scalar(
        select(func.coalesce(func.sum(Variant.weight_grams * OrderLine.quantity), 0))
        .select_from(OrderLine).join(Variant, Variant.id == OrderLine.variant_id)
        .where(OrderLine.order_id == order_id))
    return max(int(weight or 0), 1)


def describe_offers(options: Sequence[R.Option], currency: str = "GBP") -> str:
    """The windows slot steering offered (price, green or why priced up) and hid, for the
    decision record; "" when the quote was not steered."""
    steered = [o for o in options if o.offer and o.path in ("hub-window", "hub-collect")]
    if not steered:
        return ""
    parts = []
    for option in sorted(steered, key=lambda o: (o.excluded != "", o.price_amount or 0,
                                                 o.promise_at)):
        when = (f"{option.window_starts_at.astimezone(R.LONDON):%H:%M}"
                if option.window_starts_at else "collection")
        if option.excluded:
            parts.append(f"{option.location_code} {when} {option.offer}")
        else:
            parts.append(f"{option.location_code} {when} "
                         f"{format_money(option.price_amount or 0, currency)} ({option.offer})")
    return " Offered: " + "; ".join(parts) + "."


def record_decision(session: Session, *, clock: Clock, decision: R.Decision,
                    order_id: int | None, customer_id: int | None) -> FulfilmentDecisionRow:
    chosen = decision.chosen
    row = FulfilmentDecisionRow(
        order_id=order_id, customer_id=customer_id, path=chosen.path,
        location_id=chosen.location_id, window_id=chosen.window_id,
        cost_amount=chosen.cost_amount,
        central_cost_amount=decision.central.cost_amount if decision.central else None,
        hub_cost_amount=decision.hub.cost_amount if decision.hub else None,
        rule=decision.rule[:200],
        explanation=(decision.explanation + describe_offers(decision.options))[:2000],
        decided_at=clock.now())
    session.add(row)
    session.flush()
    return row


# --- delivery windows -----------------------------------------------------------------------


def create_windows(session: Session, *, location_code: str, day: date, window_minutes: int,
                   capacity: int, cutoff_minutes: int, first_start: time | None = None,
                   not_before: datetime | None = None) -> list[DeliveryWindow]:
    """Slots a hub's day into windows from its opening hours; windows already there are kept
    (running it twice changes nothing). With ``not_before``, a window whose booking cutoff is
    not after it is left out (nobody could book it)."""
    location = get_location_by_code(session, location_code)
    if location.kind is not LocationKind.micro_hub:
        raise InvalidInput(f"{location_code} is not a micro-hub", field="location")
    site = session.get(FulfilmentSite, location.id)
    if site is None:
        raise InvalidState(f"{location_code} has no fulfilment settings yet")
    try:
        hours = R.OpeningHours.from_data(site.opening_hours, site.timezone)
        slots = R.slot_windows(day, hours, window_minutes=window_minutes, capacity=capacity,
                               cutoff_minutes=cutoff_minutes, first_start=first_start)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if not_before is not None:
        slots = [s for s in slots if s.cutoff_at > not_before]
    existing = {w.starts_at: w for w in session.scalars(select(DeliveryWindow).where(
        DeliveryWindow.location_id == location.id,
        DeliveryWindow.starts_at.in_([s.starts_at for s in slots])))} if slots else {}
    windows = []
    for slot in slots:
        window = existing.get(slot.starts_at)
        if window is None:
            window = DeliveryWindow(location_id=location.id, starts_at=slot.starts_at,
                                    ends_at=slot.ends_at, cutoff_at=slot.cutoff_at,
                                    capacity=slot.capacity, booked=0, status=WindowStatus.open)
            session.add(window)
        windows.append(window)
    session.flush()
    return windows


def list_windows(session: Session, *, location_id: int | None = None,
                 starting_from: datetime | None = None, until: datetime | None = None,
                 limit: int = 200) -> list[DeliveryWindow]:
    query = select(DeliveryWindow).order_by(DeliveryWindow.starts_at, DeliveryWindow.id)
    if location_id is not None:
        query = query.where(DeliveryWindow.location_id == location_id)
    if starting_from is not None:
        query = query.where(DeliveryWindow.starts_at >= starting_from)
    if until is not None:
        query = query.where(DeliveryWindow.starts_at < until)
    return list(session.scalars(query.limit(limit)))


def get_window(session: Session, window_id: int) -> DeliveryWindow:
    window = session.get(DeliveryWindow, window_id)
    if window is None:
        raise NotFound(f"delivery window {window_id} not found")
    return window


def book_window(session: Session, *, clock: Clock, window_id: int, order_id: int,
                destination: Destination | R.GeoPoint, weight_grams: int,
                label: str = "") -> WindowBooking:
    """Books an order's stop in a window. Capacity is held by one conditional UPDATE on the
    window's ``booked`` count (the row count decides), so concurrent bookings can never
    overfill it on either engine. Booking the same order into the same window again returns
    the existing booking; an order already booked elsewhere must be cancelled first."""
    if isinstance(destination, Destination):
        label = label or destination.label
        destination = destination.point
    existing = session.scalar(select(WindowBooking).where(
        WindowBooking.live_order_id == order_id))
    if existing is not None:
        if existing.window_id == window_id:
            return existing
        raise AlreadyExists(f"order {order_id} is already booked into window "
                            f"{existing.window_id}; cancel that booking first",
                            window_id=existing.window_id)
    now = clock.now()
    raised = session.execute(
        update(DeliveryWindow)
        .where(DeliveryWindow.id == window_id, DeliveryWindow.status == WindowStatus.open,
               DeliveryWindow.cutoff_at > now, DeliveryWindow.booked < DeliveryWindow.capacity)
        .values(booked=DeliveryWindow.booked + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if raised != 1:
        window = get_window(session, window_id)
        session.refresh(window)
        if window.status is not WindowStatus.open or window.cutoff_at <= now:
            raise WindowClosed(f"window {window_id} stopped taking bookings at "
                               f"{window.cutoff_at.isoformat()}", window_id=window_id)
        raise WindowFull(f"window {window_id} is full ({window.capacity} orders)",
                         window_id=window_id)
    booking = WindowBooking(window_id=window_id, order_id=order_id, live_order_id=order_id,
                            latitude=destination.latitude, longitude=destination.longitude,
                            weight_grams=max(weight_grams, 1), label=label[:120],
                            status=BookingStatus.booked, booked_at=now)
    session.add(booking)
    session.flush()
    record_event(session, clock=clock, type="delivery_window.booked", subject_type="order",
                 subject_id=order_id, payload={"order_id": order_id, "window_id": window_id,
                                               "fulfilment_path": "hub-window"})
    return booking


def cancel_booking(session: Session, *, clock: Clock, order_id: int) -> bool:
    """Frees the order's place in its window (a refund, a change of mind); False when it had
    none. The status moves first by a conditional UPDATE, so the count drops exactly once."""
    booking = session.scalar(select(WindowBooking).where(
        WindowBooking.live_order_id == order_id))
    if booking is None:
        return False
    moved = session.execute(
        update(WindowBooking)
        .where(WindowBooking.id == booking.id, WindowBooking.status == BookingStatus.booked)
        .values(status=BookingStatus.cancelled, live_order_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved == 1:
        session.execute(update(DeliveryWindow)
                        .where(DeliveryWindow.id == booking.window_id, DeliveryWindow.booked > 0)
                        .values(booked=DeliveryWindow.booked - 1)
                        .execution_options(synchronize_session=False))
        record_event(session, clock=clock, type="delivery_window.cancelled",
                     subject_type="order", subject_id=order_id,
                     payload={"order_id": order_id, "window_id": booking.window_id})
    session.expire(booking)
    return moved == 1


# --- stock movements ------------------------------------------------------------------------


def start_movement(session: Session, *, clock: Clock, kind: MovementKind, source_code: str,
                   destination_code: str, variant_id: int, quantity: int,
                   lead_hours: float) -> StockMovement:
    """A transfer takes the units from the source now (one conditional UPDATE) and delivers
    them after ``lead_hours``; a production run makes them at a micro-factory in
    ``lead_hours`` (48 h is typical) and delivers them to the destination."""
    source = get_location_by_code(session, source_code)
    destination = get_location_by_code(session, destination_code)
    if source.id == destination.id:
        raise InvalidInput("source and destination are the same location", field="destination")
    if quantity <= 0 or not 0 <= lead_hours <= 24 * 90:
        raise InvalidInput("quantity must be positive and the lead time at most 90 days")
    if session.get(Variant, variant_id) is None:
        raise NotFound(f"variant {variant_id} not found", field="variant_id")
    if kind is MovementKind.production and source.kind is not LocationKind.micro_factory:
        raise InvalidInput(f"{source_code} is not a micro-factory", field="source")
    if kind is MovementKind.transfer and not take_stock(
            session, location_id=source.id, variant_id=variant_id, quantity=quantity):
        raise OutOfStock(f"{source_code} has fewer than {quantity} of variant {variant_id}")
    now = clock.now()
    movement = StockMovement(kind=kind, source_location_id=source.id,
                             destination_location_id=destination.id, variant_id=variant_id,
                             quantity=quantity, status=MovementStatus.in_progress,
                             started_at=now, due_at=now + timedelta(hours=lead_hours))
    session.add(movement)
    session.flush()
    record_event(session, clock=clock, type=f"stock.{kind.value}_started",
                 subject_type="variant", subject_id=variant_id,
                 payload={"movement_id": movement.id, "from": source_code,
                          "to": destination_code, "quantity": quantity,
                          "due_at": movement.due_at.isoformat()})
    return movement


def complete_due_movements(session: Session, *, clock: Clock, limit: int = 500) -> list[int]:
    """Completes every movement now due: the destination's stock rises by arithmetic. Each
    movement's status moves by a conditional UPDATE first, so running this twice, or on two
    workers at once, adds the units exactly once."""
    now = clock.now()
    due = list(session.scalars(
        select(StockMovement).where(StockMovement.status == MovementStatus.in_progress,
                                    StockMovement.due_at <= now)
        .order_by(StockMovement.id).limit(limit)))
    done = []
    for movement in due:
        moved = session.execute(
            update(StockMovement)
            .where(StockMovement.id == movement.id,
                   StockMovement.status == MovementStatus.in_progress)
            .values(status=MovementStatus.completed, completed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved != 1:
            continue
        _add_stock(session, location_id=movement.destination_location_id,
                   variant_id=movement.variant_id, quantity=movement.quantity)
        record_event(session, clock=clock, type=f"stock.{movement.kind.value}_completed",
                     subject_type="variant", subject_id=movement.variant_id,
                     payload={"movement_id": movement.id, "quantity": movement.quantity,
                              "location_id": movement.destination_location_id})
        done.append(movement.id)
    return done


def _add_stock(session: Session, *, location_id: int, variant_id: int, quantity: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(StockLevel).values(location_id=location_id, variant_id=variant_id,
                                          on_hand=quantity)
    session.execute(statement.on_conflict_do_update(
        index_elements=["location_id", "variant_id"],
        set_={"on_hand": StockLevel.on_hand + statement.excluded.on_hand}))


def list_movements(session: Session, *, limit: int = 200) -> list[StockMovement]:
    return list(session.scalars(select(StockMovement).order_by(StockMovement.id.desc())
                                .limit(limit)))


__all__ = [
    "CustomerFacts", "Destination", "LineRequest", "OptionSet", "add_vehicle", "book_window",
    "cancel_booking", "complete_due_movements", "configure_site", "create_windows",
    "decide_fulfilment", "decide_with_options", "gather_options", "get_window", "list_windows",
    "load_rules", "record_decision", "replace_rules", "resolve_destination", "set_rate_card",
    "start_movement",
]



def booked_window(session: Session, order_id: int) -> DeliveryWindow | None:
    """The window an order is booked in (its live booking), for the order page."""
    return session.scalar(select(DeliveryWindow).join(
        WindowBooking, WindowBooking.window_id == DeliveryWindow.id).where(
        WindowBooking.live_order_id == order_id))
