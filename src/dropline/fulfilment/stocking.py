"""Stock where demand is, on the stored data: the demand map read from past paid orders (each
counted at the nearest hub whose radius reaches its address), the positioning plan and its
transfer and production-run proposals (``fulfilment.positioning``), and accepting them as
stock movements. And the cost report: fulfilment cost per order by path, hub and ISO week.
Session first, keyword-only arguments after; flush, never commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import InvalidInput
from dropline.fulfilment import positioning as P
from dropline.fulfilment import rules as R
from dropline.fulfilment.models import (
    BookingStatus,
    FulfilmentDecisionRow,
    FulfilmentSite,
    MovementKind,
    MovementStatus,
    RoutePlanRow,
    StockMovement,
    WindowBooking,
)
from dropline.fulfilment.ports import Geocoder
from dropline.fulfilment.service import start_movement
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.orders.models import Order, OrderLine

__all__ = ["CostRow", "PositioningPlan", "accept_positioning", "cost_report", "plan_positioning"]


@dataclass(frozen=True)
class PositioningPlan:
    targets: list[P.PositionTarget]
    proposals: list[P.Proposal]
    orders_read: int
    orders_in_reach: int
    days: int


def _address_point(address: Mapping[str, object], geocoder: Geocoder | None) -> R.GeoPoint | None:
    lat, lon = address.get("latitude"), address.get("longitude")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        try:
            return R.GeoPoint(float(lat), float(lon))
        except ValueError:
            return None
    postcode = str(address.get("postcode") or "")
    return geocoder.locate(postcode) if postcode and geocoder is not None else None


def plan_positioning(session: Session, *, clock: Clock, geocoder: Geocoder | None = None,
                     days: int = 28, cover_days: float = 2.0, safety: float = 1.3,
                     min_units: int = 2, transfer_lead_hours: float = 12.0,
                     production_lead_hours: float = 48.0,
                     drop: P.DropDemand | None = None,
                     members_by_hub: Mapping[str, int] | None = None,
                     needed_by: datetime | None = None) -> PositioningPlan:
    """The plan from the last ``days`` of paid orders (plus a coming drop's capped estimate
    and members by hub, when given). Reads only."""
    if not 1 <= days <= 365:
        raise InvalidInput("days must be from 1 to 365", field="days")
    if cover_days <= 0 or safety < 1 or min_units < 0:
        raise InvalidInput("cover must be positive, safety at least 1", field="cover_days")
    now = clock.now()
    hubs = [(loc, R.GeoPoint(loc.latitude, loc.longitude), site.service_radius_m)
            for loc, site in session.execute(
                select(Location, FulfilmentSite)
                .join(FulfilmentSite, FulfilmentSite.location_id == Location.id)
                .where(Location.kind == LocationKind.micro_hub, Location.active.is_(True))
                .order_by(Location.code))
            if loc.latitude is not None and loc.longitude is not None]
    central = session.scalar(select(Location).where(
        Location.kind == LocationKind.central_warehouse, Location.active.is_(True))
        .order_by(Location.id))
    factory = session.scalar(select(Location).where(
        Location.kind == LocationKind.micro_factory, Location.active.is_(True))
        .order_by(Location.id))
    if central is None:
        raise InvalidInput("no central warehouse to move stock from")
    units: dict[tuple[str, int], float] = defaultdict(float)
    orders = session.execute(select(Order.id, Order.shipping_address).where(
        Order.paid_at.is_not(None), Order.paid_at >= now - timedelta(days=days),
        Order.paid_at <= now)).all()
    hub_of: dict[int, str] = {}
    for order_id, address in orders:
        point = _address_point(address or {}, geocoder)
        if point is None or not hubs:
            continue
        metres, code = min((p.metres_to(point), loc.code) for loc, p, _ in hubs)
        radius = next(r for loc, _, r in hubs if loc.code == code)
        if metres <= radius:
            hub_of[order_id] = code
    if hub_of:
        for order_id, variant_id, quantity in session.execute(
                select(OrderLine.order_id, OrderLine.variant_id, OrderLine.quantity)
                .where(OrderLine.order_id.in_(list(hub_of)))):
            units[(hub_of[order_id], variant_id)] += quantity
    shares = None
    if drop is not None:
        per_hub: dict[str, float] = defaultdict(float)
        for code in hub_of.values():
            per_hub[code] += 1
        shares = P.hub_shares(per_hub, members_by_hub or {},
                              out_of_reach=len(orders) - len(hub_of))
    daily = P.demand_map(units, past_days=days, members_by_hub=members_by_hub, shares=shares,
                         drop=drop)
    codes = {loc.id: loc.code for loc, _, _ in hubs}
    on_hand = {(codes[s.location_id], s.variant_id): s.on_hand for s in session.scalars(
        select(StockLevel).where(StockLevel.location_id.in_(list(codes))))}
    in_transit: dict[tuple[str, int], int] = defaultdict(int)
    for movement in session.scalars(select(StockMovement).where(
            StockMovement.status == MovementStatus.in_progress,
            StockMovement.destination_location_id.in_(list(codes)))):
        in_transit[(codes[movement.destination_location_id], movement.variant_id)] += \
            movement.quantity
    targets = P.positioning_plan(daily, on_hand=on_hand, in_transit=in_transit,
                                 cover_days=cover_days, safety=safety, min_units=min_units)
    central_stock = {s.variant_id: s.on_hand for s in session.scalars(
        select(StockLevel).where(StockLevel.location_id == central.id))}
    proposals = P.proposals(targets, central_code=central.code, central_on_hand=central_stock,
                            factory_code=factory.code if factory is not None else None, now=now,
                            transfer_lead_hours=transfer_lead_hours,
                            production_lead_hours=production_lead_hours, needed_by=needed_by)
    return PositioningPlan(targets, proposals, len(orders), len(hub_of), days)


def accept_positioning(session: Session, *, clock: Clock, plan: PositioningPlan,
                       only: set[int] | None = None) -> list[StockMovement]:
    """Starts the plan's proposals (all, or the 1-based numbers in ``only``) as stock
    movements: a transfer takes the units from central now; a production run delivers after
    its lead time."""
    chosen = [p for n, p in enumerate(plan.proposals, start=1) if only is None or n in only]
    if only is not None and len(chosen) != len(only):
        raise InvalidInput(f"the plan has {len(plan.proposals)} proposals", field="only")
    return [start_movement(session, clock=clock, kind=MovementKind(p.kind),
                           source_code=p.source, destination_code=p.destination,
                           variant_id=p.variant_id, quantity=p.quantity,
                           lead_hours=p.lead_hours) for p in chosen]


@dataclass(frozen=True)
class CostRow:
    week: str  # ISO week, "2026-W10"
    path: str
    location_code: str
    orders: int
    cost_amount: int
    routed_orders: int  # hub-window orders costed from their planned routes

    @property
    def cost_per_order(self) -> float:
        return self.cost_amount / self.orders if self.orders else 0.0


def cost_report(session: Session, *, since: datetime, until: datetime) -> list[CostRow]:
    """Fulfilment cost per order by ISO week, path and location, from the recorded decisions:
    a hub-window order whose window is planned costs the hub's handling plus its share of the
    planned routes (the plan's cost over its stops); every other order its decided cost."""
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    decisions = list(session.scalars(select(FulfilmentDecisionRow).where(
        FulfilmentDecisionRow.decided_at >= since, FulfilmentDecisionRow.decided_at < until)))
    window_ids = {d.window_id for d in decisions if d.window_id is not None}
    per_stop: dict[int, float] = {}
    if window_ids:
        booked = dict(session.execute(
            select(WindowBooking.window_id, func.count()).where(
                WindowBooking.window_id.in_(window_ids),
                WindowBooking.status == BookingStatus.booked).group_by(WindowBooking.window_id)
        ).all())
        for window_id, cost in session.execute(select(RoutePlanRow.window_id,
                                                      RoutePlanRow.cost_amount).where(
                RoutePlanRow.window_id.in_(window_ids))):
            if booked.get(window_id):
                per_stop[window_id] = cost / booked[window_id]
    handling = dict(session.execute(select(FulfilmentSite.location_id,
                                           FulfilmentSite.handling_amount)).all())
    codes = dict(session.execute(select(Location.id, Location.code)).all())
    totals: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for d in decisions:
        year, week, _ = d.decided_at.isocalendar()
        key = (f"{year}-W{week:02d}", d.path, codes.get(d.location_id, "?"))
        row = totals[key]
        row[0] += 1
        if d.path == "hub-window" and d.window_id in per_stop:
            row[1] += handling.get(d.location_id, 0) + per_stop[d.window_id]
            row[2] += 1
        else:
            row[1] += d.cost_amount
    return [CostRow(week, path, code, int(n), R.round_amount(cost), int(routed))
            for (week, path, code), (n, cost, routed) in sorted(totals.items())]
