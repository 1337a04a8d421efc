"""Route planning at a window's cutoff, and the route sheets read from the stored plans.

A window becomes a capacitated VRP with time windows (``vrp.build_geographic_problem``:
metres and seconds from the hub's coordinates, a detour factor and the hub's city speed),
solved behind the ``RouteSolver`` adapter and stored as routes with stop order, ETAs and load.

Time is counted in seconds from midnight (local) of the window's day. A stop's service must
*start* by the window's end minus the time at the door, so the delivery is over within the
window. The vehicles of one hub are planned as one fleet (``vrp.Fleet`` is homogeneous): the
smallest capacity, the shift all of them work, the dearest costs. That is conservative (a plan
feasible for that fleet is feasible for every vehicle); mixed fleets would need vehicle types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.db import Database
from dropline.errors import InvalidState, NotFound
from dropline.events.service import record_event
from dropline.failpoints import AFTER_SOLVE, stop_at
from dropline.fulfilment import rules as R
from dropline.fulfilment.models import (
    BookingStatus,
    DeliveryWindow,
    FulfilmentSite,
    RoutePlanRow,
    RouteRow,
    RouteStopRow,
    Vehicle,
    WindowBooking,
    WindowStatus,
)
from dropline.fulfilment.ports import RouteSolver, TravelTimes
from dropline.fulfilment.steering import EXTRA_PARCEL_SECONDS, SAME_ADDRESS_METRES
from dropline.fulfilment.vrp import (
    NO_LIMIT,
    Depot,
    Fleet,
    RoutePlan,
    RoutingProblem,
    Stop,
    StopId,
    build_geographic_problem,
    plan_routes_from_sequences,
    schedule_route,
)
from dropline.locations.models import Location

# The solver's objective is integer: per metre and per second, in units of 1/36,000 of a
# minor unit, so pence per km (x36) and pence per hour (x10) are both whole numbers.
COST_UNITS_PER_MINOR = 36_000


@dataclass(frozen=True)
class WindowProblem:
    window: DeliveryWindow
    problem: RoutingProblem
    vehicles: list[Vehicle]
    bookings: dict[int, WindowBooking]
    origin: datetime  # second 0 of the problem's clock
    costs: R.VehicleCosts | None
    # Consolidation: the stop's booking id -> every booking handed over at that stop.
    merged: dict[int, list[int]] = field(default_factory=dict)

    def bookings_at(self, stop_id: StopId) -> list[int]:
        return self.merged.get(int(stop_id), [int(stop_id)])


@dataclass(frozen=True)
class PlannedWindow:
    row: RoutePlanRow
    problem: RoutingProblem
    plan: RoutePlan


def group_same_address(bookings: Sequence[WindowBooking]) -> dict[int, list[int]]:
    """Bookings at one address (within ``SAME_ADDRESS_METRES``), in booking order, keyed by
    the first: the orders of one household in a window become one stop."""
    groups: dict[int, list[int]] = {}
    heads: list[tuple[R.GeoPoint, int]] = []
    for booking in bookings:
        point = R.GeoPoint(booking.latitude, booking.longitude)
        head = next((bid for p, bid in heads
                     if p.metres_to(point) < SAME_ADDRESS_METRES), None)
        if head is None:
            heads.append((point, booking.id))
            groups[booking.id] = [booking.id]
        else:
            groups[head].append(booking.id)
    return groups


def build_window_problem(session: Session, *, window_id: int, consolidate: bool = True,
                         travel: TravelTimes | None = None) -> WindowProblem:
    """The window's routing problem; ``travel`` (e.g. OSRM's road matrix) replaces the
    straight-line metres and seconds."""
    window = session.get(DeliveryWindow, window_id)
    if window is None:
        raise NotFound(f"delivery window {window_id} not found")
    location = session.get(Location, window.location_id)
    site = session.get(FulfilmentSite, window.location_id)
    if location is None or site is None or location.latitude is None \
            or location.longitude is None:
        raise InvalidState(f"window {window_id}'s hub has no coordinates or settings")
    tz = ZoneInfo(site.timezone)
    day = window.starts_at.astimezone(tz).date()
    origin = datetime.combine(day, datetime.min.time(), tzinfo=tz)

    def seconds(at: datetime) -> int:
        return int((at - origin).total_seconds())

    def local_seconds(clock_time: object) -> int:
        return seconds(datetime.combine(day, clock_time, tzinfo=tz))  # type: ignore[arg-type]

    hours = R.OpeningHours.from_data(site.opening_hours, site.timezone).days.get(
        day.isoweekday())
    depot = Depot(x=location.longitude, y=location.latitude,
                  earliest=local_seconds(hours[0]) if hours else 0,
                  latest=local_seconds(hours[1]) if hours else NO_LIMIT, id="hub")
    vehicles = list(session.scalars(select(Vehicle).where(
        Vehicle.location_id == location.id, Vehicle.active.is_(True)).order_by(Vehicle.id)))
    bookings = {b.id: b for b in session.scalars(select(WindowBooking).where(
        WindowBooking.window_id == window.id, WindowBooking.status == BookingStatus.booked)
        .order_by(WindowBooking.id))}
    earliest = seconds(window.starts_at)
    latest = max(earliest, seconds(window.ends_at) - site.service_seconds)
    groups = (group_same_address(list(bookings.values())) if consolidate
              else {bid: [bid] for bid in bookings})
    stops = []
    for head, members in groups.items():
        b = bookings[head]
        service = site.service_seconds + EXTRA_PARCEL_SECONDS * (len(members) - 1)
        stops.append(Stop(id=b.id, x=b.longitude, y=b.latitude,
                          demand=sum(bookings[m].weight_grams for m in members),
                          earliest=earliest, latest=max(earliest, latest - (service
                                                        - site.service_seconds)),
                          service=service))
    if vehicles:
        fleet = Fleet(
            count=len(vehicles), capacity=min(v.capacity_grams for v in vehicles),
            shift_start=max(local_seconds(v.shift_start) for v in vehicles),
            shift_end=min(local_seconds(v.shift_end) for v in vehicles),
            cost_per_distance=36 * max(v.cost_per_km_amount for v in vehicles),
            cost_per_duration=10 * max(v.cost_per_hour_amount for v in vehicles))
    else:
        fleet = Fleet(count=0, capacity=0)
    problem = build_geographic_problem(depot, stops, fleet, speed_kmh=site.speed_kmh,
                                       detour_factor=site.detour_factor,
                                       name=f"window-{window.id}")
    if travel is not None:
        matrix = travel.matrix([R.GeoPoint(location.latitude, location.longitude),
                                *(R.GeoPoint(stop.y, stop.x) for stop in stops)])
        problem = RoutingProblem(
            depot=depot, stops=tuple(stops), fleet=fleet,
            distance=np.rint(matrix.metres).astype(np.int64),
            duration=np.ceil(matrix.seconds).astype(np.int64), scale=1,
            name=f"window-{window.id} ({matrix.source})")
    costs = R.VehicleCosts(max(v.cost_per_km_amount for v in vehicles),
                           max(v.cost_per_hour_amount for v in vehicles), site.speed_kmh,
                           site.detour_factor, site.service_seconds) if vehicles else None
    merged = {head: members for head, members in groups.items() if len(members) > 1}
    return WindowProblem(window, problem, vehicles, bookings, origin, costs, merged)


@dataclass(frozen=True)
class PlanInputs:
    """What a plan is computed from, read in one short transaction: the problem, the plan it
    replaces (if any) and a fingerprint of the rows it was built from, compared again before
    the plan is stored."""

    built: WindowProblem
    replaced_plan_id: int | None
    fingerprint: tuple[object, ...]
    consolidated: bool = True


def read_plan_inputs(session: Session, *, window_id: int, replan: bool,
                     consolidate: bool = True, travel: TravelTimes | None = None) -> PlanInputs:
    """The window's routing problem; a window planned already is refused unless ``replan``."""
    built = build_window_problem(session, window_id=window_id, consolidate=consolidate,
                                 travel=travel)
    existing = session.scalar(select(RoutePlanRow.id).where(
        RoutePlanRow.window_id == built.window.id))
    if existing is not None and not replan:
        raise InvalidState(f"window {window_id} is planned already (plan {existing})",
                           plan_id=existing)
    window = built.window
    fingerprint = (
        existing, window.status, window.starts_at, window.ends_at,
        tuple((b.id, b.latitude, b.longitude, b.weight_grams) for b in built.bookings.values()),
        tuple((v.id, v.capacity_grams, v.shift_start, v.shift_end, v.cost_per_km_amount,
               v.cost_per_hour_amount) for v in built.vehicles),
        built.problem.depot)
    return PlanInputs(built, existing, fingerprint, consolidate)


def solve_plan(inputs: PlanInputs, *, solver: RouteSolver, max_seconds: float,
               seed: int) -> RoutePlan:
    """The slow part, with no session: the solver's plan, repaired to be dispatchable."""
    problem = inputs.built.problem
    return repair_plan(problem, solver.solve(problem, max_seconds=max_seconds, seed=seed))


def store_window_plan(session: Session, *, clock: Clock, inputs: PlanInputs, plan: RoutePlan,
                      solver: str) -> PlannedWindow:
    """Stores a plan computed from ``inputs``, if the window, its bookings, its vans and its
    plan are still what they were (else ``InvalidState``: plan again); the window stops taking
    bookings."""
    current = read_plan_inputs(session, window_id=inputs.built.window.id, replan=True,
                               consolidate=inputs.consolidated)
    if current.fingerprint != inputs.fingerprint:
        raise InvalidState(f"window {inputs.built.window.id} changed while it was planned; "
                           "plan it again")
    built = current.built
    window = built.window
    if current.replaced_plan_id is not None:
        session.execute(delete(RoutePlanRow).where(RoutePlanRow.id == current.replaced_plan_id))
        session.flush()
    row = _store_plan(session, clock=clock, built=built, plan=plan, solver=solver)
    window.status = WindowStatus.planned
    session.flush()
    record_event(session, clock=clock, type="delivery_window.planned",
                 subject_type="delivery_window", subject_id=window.id,
                 payload={"window_id": window.id, "routes": len(plan.routes),
                          "stops": len(built.bookings), "unassigned": len(plan.unassigned),
                          "cost_amount": row.cost_amount, "feasible": plan.feasible})
    return PlannedWindow(row, inputs.built.problem, plan)  # the problem it was solved on


def plan_window(session: Session, *, clock: Clock, window_id: int, solver: RouteSolver,
                max_seconds: float = 5.0, seed: int = 0, replan: bool = False,
                consolidate: bool = True, travel: TravelTimes | None = None) -> PlannedWindow:
    """Plans a window's routes and stores them, in the caller's transaction (the CLI, the
    demo); the window stops taking bookings. A window planned already keeps its plan unless
    ``replan``. Stops the plan cannot fit are listed as unassigned (they go by carrier).
    Servers use ``plan_window_apart``, which holds no transaction while the solver runs."""
    inputs = read_plan_inputs(session, window_id=window_id, replan=replan,
                              consolidate=consolidate, travel=travel)
    plan = solve_plan(inputs, solver=solver, max_seconds=max_seconds, seed=seed)
    return store_window_plan(session, clock=clock, inputs=inputs, plan=plan,
                             solver=type(solver).__name__)


def plan_window_apart(db: Database, *, clock: Clock, window_id: int, solver: RouteSolver,
                      max_seconds: float = 5.0, seed: int = 0,
                      replan: bool = False, consolidate: bool = True,
                      travel: TravelTimes | None = None,
                      failpoint: str | None = None) -> PlannedWindow:
    """``plan_window`` in three steps: read the problem in a short transaction, solve with no
    transaction open, store in a short transaction that checks nothing changed meanwhile. On
    SQLite every transaction takes the write lock (``BEGIN IMMEDIATE``, ``dropline.db``), so a
    solver running inside one would hold every other request for its whole run."""
    with db.transaction() as session:
        inputs = read_plan_inputs(session, window_id=window_id, replan=replan,
                                  consolidate=consolidate, travel=travel)
    plan = solve_plan(inputs, solver=solver, max_seconds=max_seconds, seed=seed)
    stop_at(AFTER_SOLVE, failpoint)  # the crash tests' setting (``dropline.failpoints``)
    with db.transaction() as session:
        return store_window_plan(session, clock=clock, inputs=inputs, plan=plan,
                                 solver=type(solver).__name__)


def repair_plan(problem: RoutingProblem, plan: RoutePlan) -> RoutePlan:
    """A plan that can be dispatched as is. When a window is over-booked for its vans (the
    solver then returns its least-bad plan, late somewhere), stops are taken off the routes
    until each route keeps every rule: first the heaviest while over capacity, then the first
    stop served late, then the last stop while the van is back after the shift. What is taken
    off is unassigned: it goes by carrier. A feasible plan is returned unchanged."""
    if plan.feasible:
        return plan
    sequences: list[list[StopId]] = []
    for route in plan.routes:
        sequence = list(route.stops)
        while sequence:
            timed = schedule_route(problem, sequence)
            if timed.feasible:
                break
            stops = [problem.stop(stop_id) for stop_id in sequence]
            if timed.load > problem.fleet.capacity:
                drop = max(range(len(stops)), key=lambda i: stops[i].demand)
            else:
                late = [i for i, (eta, stop) in enumerate(zip(timed.etas, stops, strict=True))
                        if eta > stop.latest]
                drop = late[0] if late else len(sequence) - 1
            sequence.pop(drop)
        if sequence:
            sequences.append(sequence)
    # More routes than vans: keep the fullest.
    sequences.sort(key=len, reverse=True)
    return plan_routes_from_sequences(problem, sequences[:problem.fleet.count])


def _store_plan(session: Session, *, clock: Clock, built: WindowProblem, plan: RoutePlan,
                solver: str) -> RoutePlanRow:
    costs = built.costs
    row = RoutePlanRow(
        window_id=built.window.id, planned_at=clock.now(), solver=solver[:32],
        cost_amount=R.round_amount(plan.cost / COST_UNITS_PER_MINOR),
        distance_m=plan.distance, duration_s=plan.duration, feasible=plan.feasible,
        unassigned_booking_ids=[bid for stop_id in plan.unassigned
                                for bid in built.bookings_at(stop_id)])
    session.add(row)
    session.flush()
    for number, (route, vehicle) in enumerate(zip(plan.routes, built.vehicles, strict=False),
                                              start=1):
        route_row = RouteRow(
            plan_id=row.id, vehicle_id=vehicle.id, number=number,
            departs_at=built.origin + timedelta(seconds=route.departure),
            returns_at=built.origin + timedelta(seconds=route.return_time),
            load_grams=route.load, distance_m=route.distance,
            cost_amount=costs.amount_for(route.distance, route.duration) if costs else 0)
        session.add(route_row)
        session.flush()
        # A consolidated stop stores one row per booking, at the same position and time.
        session.add_all(RouteStopRow(route_id=route_row.id, position=position,
                                     booking_id=booking_id,
                                     eta=built.origin + timedelta(seconds=eta))
                        for position, (stop_id, eta) in enumerate(zip(route.stops, route.etas),
                                                                   start=1)
                        for booking_id in built.bookings_at(stop_id))
    session.flush()
    return row


def windows_due_for_planning(session: Session, *, at: datetime, limit: int = 100) -> list[int]:
    return list(session.scalars(
        select(DeliveryWindow.id).where(DeliveryWindow.status == WindowStatus.open,
                                        DeliveryWindow.cutoff_at <= at)
        .order_by(DeliveryWindow.cutoff_at, DeliveryWindow.id).limit(limit)))


# --- route sheets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetStop:
    position: int
    booking_id: int
    order_id: int
    label: str
    latitude: float
    longitude: float
    eta: datetime
    weight_grams: int


@dataclass(frozen=True)
class SheetRoute:
    number: int
    vehicle: str
    departs_at: datetime
    returns_at: datetime
    load_grams: int
    capacity_grams: int
    distance_m: int
    cost_amount: int
    stops: list[SheetStop]


@dataclass(frozen=True)
class RouteSheet:
    window_id: int
    hub_code: str
    hub_name: str
    hub_latitude: float
    hub_longitude: float
    starts_at: datetime
    ends_at: datetime
    planned_at: datetime
    solver: str
    cost_amount: int
    distance_m: int
    duration_s: int
    feasible: bool
    routes: list[SheetRoute]
    unassigned: list[SheetStop]


def route_sheet(session: Session, *, window_id: int) -> RouteSheet:
    window = session.get(DeliveryWindow, window_id)
    if window is None:
        raise NotFound(f"delivery window {window_id} not found")
    plan = session.scalar(select(RoutePlanRow).where(RoutePlanRow.window_id == window_id))
    if plan is None:
        raise NotFound(f"window {window_id} has no route plan yet (it is planned at cutoff, "
                       f"{window.cutoff_at.isoformat()})")
    location = session.get(Location, window.location_id)
    assert location is not None
    bookings = {b.id: b for b in session.scalars(
        select(WindowBooking).where(WindowBooking.window_id == window_id))}
    routes_rows = list(session.scalars(select(RouteRow).where(RouteRow.plan_id == plan.id)
                                       .order_by(RouteRow.number)))
    vehicles = {v.id: v for v in session.scalars(select(Vehicle).where(
        Vehicle.id.in_([r.vehicle_id for r in routes_rows])))}
    stops_by_route: dict[int, list[RouteStopRow]] = {r.id: [] for r in routes_rows}
    for stop in session.scalars(select(RouteStopRow).where(
            RouteStopRow.route_id.in_(list(stops_by_route))).order_by(RouteStopRow.position)):
        stops_by_route[stop.route_id].append(stop)

    def sheet_stop(position: int, booking_id: int, eta: datetime) -> SheetStop:
        b = bookings[booking_id]
        return SheetStop(position, b.id, b.order_id, b.label, b.latitude, b.longitude, eta,
                         b.weight_grams)

    routes = [
        SheetRoute(r.number, vehicles[r.vehicle_id].name, r.departs_at, r.returns_at,
                   r.load_grams, vehicles[r.vehicle_id].capacity_grams, r.distance_m,
                   r.cost_amount,
                   [sheet_stop(s.position, s.booking_id, s.eta) for s in stops_by_route[r.id]])
        for r in routes_rows
    ]
    unassigned = [sheet_stop(0, bid, window.starts_at) for bid in plan.unassigned_booking_ids
                  if bid in bookings]
    return RouteSheet(
        window.id, location.code, location.name, location.latitude or 0.0,
        location.longitude or 0.0, window.starts_at, window.ends_at, plan.planned_at,
        plan.solver, plan.cost_amount, plan.distance_m, plan.duration_s, plan.feasible, routes,
        unassigned)


def sheet_sequences(sheet: RouteSheet) -> list[Sequence[int]]:
    """The stored visit orders, by booking id (for checking a stored plan independently)."""
    return [[stop.booking_id for stop in route.stops] for route in sheet.routes]
