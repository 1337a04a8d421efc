"""Fulfilment rules: the cost model, the per-order decision and window slotting, as pure
functions over plain data (no session, no I/O), so each is tested without a database.

Money is integer minor units (pence). Costs are worked out in floating point from distances
and durations and rounded once, half up, at the end of each component, so the parts of a
breakdown always add up to its total.

The decision, in order:

1. Options are listed by the service: central shipping from the warehouse, and one option per
   hub delivery window that could still take the order. An option without the stock, outside a
   hub's service radius, or in a full or closed window carries the reason it is ``excluded``.
2. Options that miss the order's promise (``required_by``) are excluded here.
3. The brand's rules are tried in order; the first whose conditions hold *and* whose action
   finds an eligible option decides.
4. Otherwise the cheapest eligible option wins (a tie goes to the hub: the van is going anyway).
5. When nothing meets the promise, the cheapest option that has the stock is taken and the
   explanation says the promise is missed; when nothing has the stock there is no decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from dropline.fulfilment.vrp import EARTH_RADIUS_METRES, haversine_metres
from dropline.money import format_money

__all__ = [
    "ACTIONS", "CONDITION_FIELDS", "OPERATORS", "CarrierRate", "CentralQuote", "CentralSite",
    "Condition", "Decision", "GeoPoint", "Insertion", "OpeningHours", "Option", "OrderFacts",
    "Path", "Rule", "VehicleCosts", "WindowSlot", "carrier_rate", "central_quote", "decide",
    "describe_condition", "describe_rule", "insertion_quote", "joined_central_quote", "parse_rule",
    "round_amount", "slot_windows", "trip_quote", "window_price",
]

Path = Literal["central", "hub-window", "hub-collect", "pop-up"]
LONDON = ZoneInfo("Europe/London")


# --- money and geometry ---------------------------------------------------------------------


def round_amount(value: float) -> int:
    """Half up, to whole minor units (costs are never negative)."""
    return int(math.floor(value + 0.5))


@dataclass(frozen=True)
class GeoPoint:
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if not (-90 <= self.latitude <= 90 and -180 <= self.longitude <= 180):
            raise ValueError(f"not a place on Earth: {self.latitude}, {self.longitude}")

    def metres_to(self, other: GeoPoint) -> float:
        return haversine_metres(self.longitude, self.latitude, other.longitude, other.latitude)


def _metres_matrix(points: Sequence[GeoPoint]) -> np.ndarray:
    """Great-circle metres between every pair (vectorised haversine, same formula as vrp)."""
    lat = np.radians([p.latitude for p in points])
    lon = np.radians([p.longitude for p in points])
    dphi = lat[:, None] - lat[None, :]
    dlambda = lon[:, None] - lon[None, :]
    a = (np.sin(dphi / 2) ** 2
         + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlambda / 2) ** 2)
    return 2 * EARTH_RADIUS_METRES * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


# --- central shipping -----------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierRate:
    """One cell of the carrier's rate card: a zone (a distance band from the warehouse) and a
    weight step. The card is read smallest band first, then lightest step first."""

    zone: str
    max_distance_km: float
    max_weight_grams: int
    amount: int
    transit_days: int


@dataclass(frozen=True)
class CentralSite:
    location_id: int
    code: str
    point: GeoPoint
    pick_pack_amount: int
    rates: tuple[CarrierRate, ...]
    # Parcels picked before this local hour leave the same day.
    dispatch_cutoff_hour: int = 14
    timezone: str = "Europe/London"


@dataclass(frozen=True)
class CentralQuote:
    cost_amount: int
    pick_pack_amount: int
    carrier_amount: int
    zone: str
    distance_km: float
    promise_at: datetime


def carrier_rate(rates: Sequence[CarrierRate], *, distance_km: float,
                 weight_grams: int) -> CarrierRate | None:
    ordered = sorted(rates, key=lambda r: (r.max_distance_km, r.max_weight_grams))
    for rate in ordered:
        if distance_km <= rate.max_distance_km and weight_grams <= rate.max_weight_grams:
            return rate
    return None


def central_quote(site: CentralSite, *, destination: GeoPoint, weight_grams: int,
                  at: datetime) -> CentralQuote | None:
    """Pick/pack plus the carrier's rate for the zone and weight; None when the card has no
    rate (too heavy or too far). The promise is the end of the delivery day, 20:00 local:
    dispatch today before the cutoff (tomorrow after it), plus the zone's transit days.
    Weekends are not skipped: the carrier is assumed to deliver seven days a week."""
    distance_km = site.point.metres_to(destination) / 1000
    rate = carrier_rate(site.rates, distance_km=distance_km, weight_grams=weight_grams)
    if rate is None:
        return None
    tz = ZoneInfo(site.timezone)
    local = at.astimezone(tz)
    dispatch_day = local.date() + timedelta(days=0 if local.hour < site.dispatch_cutoff_hour
                                            else 1)
    delivered = datetime.combine(dispatch_day + timedelta(days=rate.transit_days), time(20, 0),
                                 tzinfo=tz)
    return CentralQuote(
        cost_amount=site.pick_pack_amount + rate.amount, pick_pack_amount=site.pick_pack_amount,
        carrier_amount=rate.amount, zone=rate.zone, distance_km=round(distance_km, 2),
        promise_at=delivered.astimezone(at.tzinfo),
    )


def joined_central_quote(site: CentralSite, *, destination: GeoPoint, parcel_grams: int,
                         weight_grams: int, at: datetime) -> CentralQuote | None:
    """Consolidation at the warehouse: an order joining a parcel to the same address that has
    not left yet costs its pick/pack plus what the heavier parcel adds to the carrier's rate
    (often nothing), not a second parcel. None when the card cannot carry the joined weight."""
    alone = central_quote(site, destination=destination, weight_grams=parcel_grams, at=at)
    joined = central_quote(site, destination=destination,
                           weight_grams=parcel_grams + weight_grams, at=at)
    if alone is None or joined is None:
        return None
    extra = joined.carrier_amount - alone.carrier_amount
    return CentralQuote(cost_amount=site.pick_pack_amount + extra,
                        pick_pack_amount=site.pick_pack_amount, carrier_amount=extra,
                        zone=joined.zone, distance_km=joined.distance_km,
                        promise_at=joined.promise_at)


# --- hub deliveries -------------------------------------------------------------------------


@dataclass(frozen=True)
class VehicleCosts:
    """What driving costs a hub: per km and per hour (driver and vehicle), at a city speed,
    with a detour factor turning great-circle metres into street metres, and a fixed time at
    each door."""

    cost_per_km_amount: int
    cost_per_hour_amount: int
    speed_kmh: float = 18.0
    detour_factor: float = 1.3
    service_seconds: int = 180

    def street_metres(self, straight: float) -> float:
        return straight * self.detour_factor

    def seconds_for(self, metres: float) -> float:
        return metres / (self.speed_kmh / 3.6)

    def amount_for(self, metres: float, seconds: float) -> int:
        return round_amount(metres / 1000 * self.cost_per_km_amount
                            + seconds / 3600 * self.cost_per_hour_amount)


@dataclass(frozen=True)
class Insertion:
    """The marginal cost of one more stop in a window: extra street metres and seconds
    (driving plus the time at the door), priced by the hub's vehicle costs."""

    extra_metres: float
    extra_seconds: float
    amount: int
    booked_stops: int
    # Street metres to the nearest stop already booked in the window (None when it is empty).
    nearest_booked_metres: float | None


def trip_quote(depot: GeoPoint, destination: GeoPoint, costs: VehicleCosts) -> Insertion:
    """A trip of its own: hub, door, hub (what a window with nothing booked yet costs)."""
    metres = 2 * costs.street_metres(depot.metres_to(destination))
    seconds = costs.seconds_for(metres) + costs.service_seconds
    return Insertion(metres, seconds, costs.amount_for(metres, seconds), 0, None)


def insertion_quote(depot: GeoPoint, booked: Sequence[GeoPoint], destination: GeoPoint,
                    costs: VehicleCosts) -> Insertion:
    """Cheapest insertion of ``destination`` into a provisional tour of the window's booked
    stops, for a quote. The tour is nearest-neighbour from the hub: a quick stand-in for the
    routes the solver will plan at cutoff (which can only be as good or better, so the quote is
    an honest upper estimate of the marginal cost for a single vehicle)."""
    if not booked:
        return trip_quote(depot, destination, costs)
    points = [depot, *booked, destination]
    matrix = _metres_matrix(points) * costs.detour_factor
    new = len(points) - 1
    tour = [0]
    left = set(range(1, new))
    while left:
        here = tour[-1]
        candidates = sorted(left)
        nxt = candidates[int(np.argmin(matrix[here, candidates]))]
        tour.append(nxt)
        left.discard(nxt)
    tour.append(0)
    a = np.array(tour[:-1])
    b = np.array(tour[1:])
    extra = matrix[a, new] + matrix[new, b] - matrix[a, b]
    metres = float(max(extra.min(), 0.0))
    seconds = costs.seconds_for(metres) + costs.service_seconds
    nearest = float(matrix[new, 1:new].min())
    return Insertion(metres, seconds, costs.amount_for(metres, seconds), len(booked), nearest)


def window_price(insertion: Insertion, *, trip: Insertion, base_price_amount: int,
                 green_price_amount: int, green_max_share: float = 0.4) -> tuple[int, bool]:
    """What the shopper pays for a window, and whether it is "green": a van already goes
    nearby, so this stop adds at most ``green_max_share`` of what a trip of its own would."""
    green = insertion.booked_stops > 0 and insertion.amount <= green_max_share * trip.amount
    return (green_price_amount if green else base_price_amount), green


# --- window slotting ------------------------------------------------------------------------


@dataclass(frozen=True)
class OpeningHours:
    """Local opening times per ISO weekday (1 = Monday); a missing day is closed."""

    days: Mapping[int, tuple[time, time]]
    timezone: str = "Europe/London"

    @classmethod
    def from_data(cls, data: Mapping[str, Any], timezone: str = "Europe/London") -> OpeningHours:
        """From ``{"mon": ["08:00", "20:00"], ...}``; raises ValueError on anything else."""
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        days: dict[int, tuple[time, time]] = {}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"unknown day {key!r}; use {', '.join(names)}")
            if not (isinstance(value, list | tuple) and len(value) == 2):
                raise ValueError(f"{key}: give [opening, closing] as 'HH:MM'")
            opens, closes = (time.fromisoformat(str(v)) for v in value)
            if opens >= closes:
                raise ValueError(f"{key}: opens at {opens} but closes at {closes}")
            days[names.index(key) + 1] = (opens, closes)
        ZoneInfo(timezone)
        return cls(days, timezone)

    def to_data(self) -> dict[str, list[str]]:
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return {names[d - 1]: [o.strftime("%H:%M"), c.strftime("%H:%M")]
                for d, (o, c) in sorted(self.days.items())}


@dataclass(frozen=True)
class WindowSlot:
    starts_at: datetime
    ends_at: datetime
    cutoff_at: datetime
    capacity: int


def slot_windows(day: date, hours: OpeningHours, *, window_minutes: int, capacity: int,
                 cutoff_minutes: int, first_start: time | None = None) -> list[WindowSlot]:
    """Cuts a day's opening hours into back-to-back delivery windows of ``window_minutes``
    (a last, shorter remainder is dropped). Each window stops taking bookings
    ``cutoff_minutes`` before it starts: the time to plan its routes and load the vans.
    Times are local wall-clock, returned in UTC (so a DST change day is handled)."""
    if window_minutes <= 0 or capacity <= 0 or cutoff_minutes < 0:
        raise ValueError("window length and capacity must be positive, cutoff non-negative")
    opening = hours.days.get(day.isoweekday())
    if opening is None:
        return []
    tz = ZoneInfo(hours.timezone)
    opens, closes = opening
    if first_start is not None:
        opens = max(opens, first_start)
    start = datetime.combine(day, opens, tzinfo=tz)
    end_of_day = datetime.combine(day, closes, tzinfo=tz)
    slots = []
    step = timedelta(minutes=window_minutes)
    while start + step <= end_of_day:
        starts_at = start.astimezone(ZoneInfo("UTC"))
        slots.append(WindowSlot(starts_at, (start + step).astimezone(ZoneInfo("UTC")),
                                starts_at - timedelta(minutes=cutoff_minutes), capacity))
        start += step
    return slots


# --- the brand's rules ----------------------------------------------------------------------

CONDITION_FIELDS: dict[str, tuple[type, str]] = {
    "distance_to_hub_km": (float, "distance to the nearest hub (km)"),
    "member_delivery_subsidy": (bool, "member with a delivery subsidy"),
    "is_member": (bool, "member"),
    "weight_grams": (int, "parcel weight (g)"),
    "subtotal_amount": (int, "basket subtotal (minor units)"),
    "central_zone": (str, "carrier zone from the warehouse"),
}
OPERATORS: dict[str, str] = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥", "eq": "=", "ne": "≠",
                             "in": "in"}
ACTIONS: dict[str, str] = {
    "prefer-hub": "deliver from the cheapest hub window that can take it",
    "prefer-central": "ship from the central warehouse",
}


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any

    def holds(self, facts: OrderFacts) -> bool:
        actual = getattr(facts, self.field)
        if actual is None:
            return False  # an unknown fact never satisfies a condition
        if self.op == "in":
            return actual in self.value
        return {
            "lt": lambda: actual < self.value, "le": lambda: actual <= self.value,
            "gt": lambda: actual > self.value, "ge": lambda: actual >= self.value,
            "eq": lambda: actual == self.value, "ne": lambda: actual != self.value,
        }[self.op]()


@dataclass(frozen=True)
class Rule:
    """"If all conditions hold, <action>"; ``max_premium_amount`` caps how much more than
    central shipping a preferred hub may cost (None: no cap)."""

    name: str
    conditions: tuple[Condition, ...]
    action: str
    max_premium_amount: int | None = None
    enabled: bool = True

    def matches(self, facts: OrderFacts) -> bool:
        return all(condition.holds(facts) for condition in self.conditions)


MAX_PREMIUM_AMOUNT = 10**9  # minor units: ten million in major units


def parse_rule(data: Mapping[str, Any]) -> Rule:
    """A rule from stored or submitted data; raises ValueError naming what is wrong."""
    name = str(data.get("name", "")).strip()
    if not name or len(name) > 120:
        raise ValueError("a rule needs a name (at most 120 characters)")
    action = data.get("action")
    if action not in ACTIONS:
        raise ValueError(f"rule {name!r}: action must be one of {', '.join(ACTIONS)}")
    premium = data.get("max_premium_amount")
    if premium is not None and (not isinstance(premium, int) or isinstance(premium, bool)
                                or not 0 <= premium <= MAX_PREMIUM_AMOUNT):
        raise ValueError(f"rule {name!r}: max_premium_amount must be an integer from 0 to "
                         f"{MAX_PREMIUM_AMOUNT}")
    raw = data.get("conditions", [])
    if not isinstance(raw, list) or len(raw) > 20:
        raise ValueError(f"rule {name!r}: conditions must be a list (at most 20)")
    conditions = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ValueError(f"rule {name!r}: each condition is {{field, op, value}}")
        conditions.append(_parse_condition(name, item))
    return Rule(name, tuple(conditions), action, premium, bool(data.get("enabled", True)))


def _parse_condition(rule: str, item: Mapping[str, Any]) -> Condition:
    field_name, op, value = item.get("field"), item.get("op"), item.get("value")
    if field_name not in CONDITION_FIELDS:
        raise ValueError(f"rule {rule!r}: unknown field {field_name!r}; one of "
                         f"{', '.join(CONDITION_FIELDS)}")
    if op not in OPERATORS:
        raise ValueError(f"rule {rule!r}: unknown op {op!r}; one of {', '.join(OPERATORS)}")
    kind = CONDITION_FIELDS[field_name][0]
    values = value if op == "in" else [value]
    if op == "in" and (not isinstance(value, list) or not value or len(value) > 50):
        raise ValueError(f"rule {rule!r}: 'in' takes a non-empty list")
    for v in values:
        ok = (isinstance(v, bool) if kind is bool
              else isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
              if kind in (int, float) else isinstance(v, str) and len(v) <= 64)
        if not ok:
            raise ValueError(f"rule {rule!r}: {field_name} compares with a {kind.__name__}")
    if kind is bool and op not in ("eq", "ne"):
        raise ValueError(f"rule {rule!r}: {field_name} takes eq or ne")
    if kind is str and op not in ("eq", "ne", "in"):
        raise ValueError(f"rule {rule!r}: {field_name} takes eq, ne or in")
    return Condition(field_name, op, tuple(value) if op == "in" else value)


def rule_to_data(rule: Rule) -> dict[str, Any]:
    return {"name": rule.name, "action": rule.action,
            "max_premium_amount": rule.max_premium_amount, "enabled": rule.enabled,
            "conditions": [{"field": c.field, "op": c.op,
                            "value": list(c.value) if c.op == "in" else c.value}
                           for c in rule.conditions]}


def describe_condition(condition: Condition) -> str:
    label = CONDITION_FIELDS[condition.field][1]
    if isinstance(condition.value, bool):
        truth = condition.value == (condition.op == "eq")
        return label if truth else f"not {label}"
    if condition.op == "in":
        return f"{label} in {', '.join(map(str, condition.value))}"
    return f"{label} {OPERATORS[condition.op]} {condition.value}"


def describe_rule(rule: Rule, currency: str = "GBP") -> str:
    when = " and ".join(describe_condition(c) for c in rule.conditions) or "always"
    then = ACTIONS[rule.action]
    if rule.action == "prefer-hub" and rule.max_premium_amount is not None:
        then += f", if it costs at most {format_money(rule.max_premium_amount, currency)} " \
                "more than central"
    return f"if {when}: {then}"


# --- the decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFacts:
    """What the rules can test. ``None`` means unknown (a rule testing it does not match)."""

    weight_grams: int
    subtotal_amount: int = 0
    distance_to_hub_km: float | None = None
    is_member: bool = False
    member_delivery_subsidy: bool = False
    central_zone: str | None = None
    required_by: datetime | None = None


@dataclass(frozen=True)
class Option:
    path: Path
    location_id: int
    location_code: str
    cost_amount: int
    promise_at: datetime
    breakdown: tuple[tuple[str, int], ...] = ()
    window_id: int | None = None
    window_starts_at: datetime | None = None
    excluded: str = ""  # why it cannot be chosen; "" when eligible
    price_amount: int | None = None  # what the shopper pays (windows)
    green: bool = False
    offer: str = ""  # why a window is offered at its price, or hidden (slot steering)

    @property
    def eligible(self) -> bool:
        return not self.excluded

    def label(self, currency: str = "GBP") -> str:
        if self.path == "hub-window" and self.window_starts_at is not None:
            local = self.window_starts_at.astimezone(LONDON)
            end = self.promise_at.astimezone(LONDON)
            what = f"{self.location_code} window {local:%a %H:%M}–{end:%H:%M}"
        elif self.path == "hub-collect":
            what = f"collection at {self.location_code}"
        else:
            what = f"{self.path} shipping from {self.location_code}"
        parts = " + ".join(f"{name} {format_money(amount, currency)}"
                           for name, amount in self.breakdown)
        return f"{what} {format_money(self.cost_amount, currency)}" + (f" ({parts})" if parts
                                                                        else "")


@dataclass(frozen=True)
class Decision:
    chosen: Option
    rule: str
    explanation: str
    central: Option | None
    hub: Option | None
    options: tuple[Option, ...] = field(default_factory=tuple)
    promise_met: bool = True

    @property
    def path(self) -> Path:
        return self.chosen.path


DEFAULT_RULE = "lowest cost"


def decide(facts: OrderFacts, options: Sequence[Option], rules: Sequence[Rule],
           currency: str = "GBP") -> Decision | None:
    """Chooses among the options (see the module docstring); None when none has the stock."""
    judged = [
        replace(o, excluded=f"misses the promise: {o.promise_at:%Y-%m-%d %H:%M} UTC is after "
                            f"{facts.required_by:%Y-%m-%d %H:%M} UTC")
        if o.eligible and facts.required_by is not None and o.promise_at > facts.required_by
        else o
        for o in options
    ]
    eligible = [o for o in judged if o.eligible]

    def cheapest(candidates: Sequence[Option]) -> Option | None:
        # Ties go to the hub window (the van goes anyway), then to the earlier promise.
        return min(candidates, key=lambda o: (o.cost_amount, o.path == "central", o.promise_at,
                                              o.window_id or 0), default=None)

    central = cheapest([o for o in eligible if o.path == "central"])
    hub = cheapest([o for o in eligible if o.path == "hub-window"])
    notes: list[str] = []

    chosen: Option | None = None
    rule_name = DEFAULT_RULE
    for rule in rules:
        if not rule.enabled or not rule.matches(facts):
            continue
        if rule.action == "prefer-central":
            if central is not None:
                chosen, rule_name = central, rule.name
                break
            notes.append(f"rule {rule.name!r} matched, but central shipping cannot take it")
        elif rule.action == "prefer-hub":
            if hub is None:
                notes.append(f"rule {rule.name!r} matched, but no hub window can take it")
                continue
            premium = hub.cost_amount - central.cost_amount if central else 0
            if rule.max_premium_amount is not None and premium > rule.max_premium_amount:
                notes.append(f"rule {rule.name!r} matched, but the hub costs "
                             f"{format_money(premium, currency)} more than central (cap "
                             f"{format_money(rule.max_premium_amount, currency)})")
                continue
            chosen, rule_name = hub, rule.name
            break

    promise_met = True
    if chosen is None:
        chosen = cheapest(eligible)
    if chosen is None:
        promise_met = False
        stocked = [o for o in judged if o.excluded.startswith("misses the promise")]
        chosen = cheapest(stocked)
        rule_name = "no option meets the promise: cheapest with stock"
        central = cheapest([o for o in stocked if o.path == "central"])
        hub = cheapest([o for o in stocked if o.path == "hub-window"])
        if chosen is None:
            return None

    explanation = _explain(chosen, central, hub, rule_name, notes, currency)
    return Decision(chosen=chosen, rule=rule_name, explanation=explanation, central=central,
                    hub=hub, options=tuple(judged), promise_met=promise_met)


def _explain(chosen: Option, central: Option | None, hub: Option | None, rule: str,
             notes: Sequence[str], currency: str) -> str:
    parts = [f"chose {chosen.label(currency)}"]
    if central is not None and central is not chosen:
        parts.append(f"vs {central.label(currency)}")
    elif central is None and chosen.path != "central":
        parts.append("central: not possible")
    if hub is not None and hub is not chosen:
        parts.append(f"vs best hub {hub.label(currency)}")
    elif hub is None and chosen.path != "hub-window":
        parts.append("hub: no window can take it")
    text = "; ".join(parts) + f". Decided by: {rule}."
    if notes:
        text += " " + "; ".join(notes) + "."
    return text
