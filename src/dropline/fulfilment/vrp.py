"""Route-planning data model for a hub's delivery window (a capacitated VRP with time windows).

Everything here is plain data and pure functions: no solver, no I/O. A solver adapter
(`dropline.adapters.routing`) turns a `RoutingProblem` into stop sequences, and
`plan_routes_from_sequences` turns any sequences into a `RoutePlan` with ETAs, loads, costs and
a feasibility verdict computed by the rules below, so every solver is judged the same way.

Units. A problem is integer throughout: the distance matrix, the duration matrix, time windows,
service durations and shifts share one time unit, and `scale` says how many matrix units make
one natural unit. Planar problems follow the DIMACS convention (`scale=10`: each arc is
`floor(10 * euclid)`, travel time equals distance, times are multiplied by 10), so a natural
distance is `distance / scale`. Geographic problems use metres and seconds (`scale=1`).

Matrix indexing. Row/column 0 is the depot, row/column `i` is `stops[i - 1]`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "NO_LIMIT",
    "Depot",
    "Fleet",
    "PlannedRoute",
    "RoutePlan",
    "RoutingProblem",
    "Stop",
    "StopId",
    "build_geographic_problem",
    "build_planar_problem",
    "haversine_metres",
    "plan_routes_from_sequences",
    "planar_arc_matrix",
    "schedule_route",
]

StopId: TypeAlias = int | str

# Far beyond any delivery window, yet small enough that adding a few of them cannot overflow
# the int64 arithmetic solvers use.
NO_LIMIT = 2**40

EARTH_RADIUS_METRES = 6_371_008.8  # IUGG mean radius


@dataclass(frozen=True)
class Depot:
    """The hub every route starts and ends at. For geographic problems x is longitude and y is
    latitude, in degrees (GeoJSON order)."""

    x: float
    y: float
    earliest: int = 0
    latest: int = NO_LIMIT
    id: StopId = 0

    def __post_init__(self) -> None:
        if self.earliest > self.latest:
            raise ValueError(f"depot window [{self.earliest}, {self.latest}] is empty")


@dataclass(frozen=True)
class Stop:
    """A delivery. Service must *start* within [earliest, latest]; arriving early means
    waiting. For geographic problems x is longitude and y is latitude, in degrees."""

    id: StopId
    x: float
    y: float
    demand: int = 0
    earliest: int = 0
    latest: int = NO_LIMIT
    service: int = 0

    def __post_init__(self) -> None:
        if self.earliest > self.latest:
            raise ValueError(f"stop {self.id!r}: window [{self.earliest}, {self.latest}] is empty")
        if self.demand < 0 or self.service < 0:
            raise ValueError(f"stop {self.id!r}: demand and service must be non-negative")


@dataclass(frozen=True)
class Fleet:
    """Identical vehicles based at the depot. A route leaves no earlier than `shift_start` and
    is back no later than `shift_end`."""

    count: int
    capacity: int
    shift_start: int = 0
    shift_end: int = NO_LIMIT
    cost_per_distance: int = 1
    cost_per_duration: int = 0
    cost_per_route: int = 0

    def __post_init__(self) -> None:
        if self.count < 0 or self.capacity < 0:
            raise ValueError("fleet count and capacity must be non-negative")
        if self.shift_start > self.shift_end:
            raise ValueError(f"shift [{self.shift_start}, {self.shift_end}] is empty")


IntMatrix: TypeAlias = npt.NDArray[np.int64]


# eq=False: the generated __eq__ would compare numpy arrays element-wise and raise.
@dataclass(frozen=True, eq=False)
class RoutingProblem:
    depot: Depot
    stops: tuple[Stop, ...]
    fleet: Fleet
    distance: IntMatrix
    duration: IntMatrix
    scale: int = 1
    name: str = ""
    _index: dict[StopId, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stops", tuple(self.stops))
        size = len(self.stops) + 1
        for label in ("distance", "duration"):
            matrix = np.array(getattr(self, label), dtype=np.int64)
            if matrix.shape != (size, size):
                raise ValueError(f"{label} matrix is {matrix.shape}, expected {(size, size)}")
            if (matrix < 0).any():
                raise ValueError(f"{label} matrix has negative entries")
            # A problem is a value: freeze the arrays so no caller can change it under a solver.
            matrix.setflags(write=False)
            object.__setattr__(self, label, matrix)
        index = {stop.id: i for i, stop in enumerate(self.stops, start=1)}
        if len(index) != len(self.stops):
            raise ValueError("stop ids must be unique")
        if self.depot.id in index:
            raise ValueError(f"stop id {self.depot.id!r} is also the depot's id")
        object.__setattr__(self, "_index", index)

    def node(self, stop_id: StopId) -> int:
        """Matrix row of a stop."""
        return self._index[stop_id]

    def stop(self, stop_id: StopId) -> Stop:
        return self.stops[self._index[stop_id] - 1]

    @property
    def route_start(self) -> int:
        return max(self.depot.earliest, self.fleet.shift_start)

    @property
    def route_end(self) -> int:
        return min(self.depot.latest, self.fleet.shift_end)


@dataclass(frozen=True)
class PlannedRoute:
    """One vehicle's trip. `etas[k]` is when service starts at `stops[k]` (after any wait)."""

    stops: tuple[StopId, ...]
    etas: tuple[int, ...]
    departure: int
    return_time: int
    load: int
    distance: int
    violations: tuple[str, ...] = ()

    @property
    def duration(self) -> int:
        return self.return_time - self.departure

    @property
    def feasible(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class RoutePlan:
    """`feasible` means the plan can be dispatched as is: every route respects capacity, windows
    and the shift, the fleet is large enough, and no stop is left unassigned."""

    routes: tuple[PlannedRoute, ...]
    unassigned: tuple[StopId, ...]
    distance: int
    duration: int
    cost: int
    feasible: bool
    violations: tuple[str, ...] = ()

    @property
    def sequences(self) -> list[list[StopId]]:
        return [list(route.stops) for route in self.routes]


def schedule_route(problem: RoutingProblem, stop_ids: Sequence[StopId]) -> PlannedRoute:
    """Times one route and lists the rules it breaks.

    The vehicle leaves as late as it can without returning later or missing a window: waiting
    at the hub is cheaper than waiting at a customer's door, and it gives the shortest duration
    for the sequence. When the sequence is late somewhere, it leaves at the start of the shift
    and the lateness is reported.
    """
    nodes = [problem.node(stop_id) for stop_id in stop_ids]
    stops = [problem.stops[node - 1] for node in nodes]
    dur = problem.duration

    def run(departure: int) -> tuple[list[int], list[int], int]:
        starts: list[int] = []
        waits: list[int] = []
        clock, here = departure, 0
        for node, stop in zip(nodes, stops, strict=True):
            arrival = clock + int(dur[here, node])
            start = max(arrival, stop.earliest)
            starts.append(start)
            waits.append(start - arrival)
            clock, here = start + stop.service, node
        return starts, waits, clock + int(dur[here, 0])

    departure = problem.route_start
    starts, waits, back = run(departure)
    if all(s <= stop.latest for s, stop in zip(starts, stops, strict=True)):
        # A delay of d leaves stop k's start at s_k + max(0, d - waits up to k): the delay is
        # absorbed by waiting, and the return is unchanged while d <= total waiting.
        delay, waited = sum(waits), 0
        for start, wait, stop in zip(starts, waits, stops, strict=True):
            waited += wait
            delay = min(delay, waited + stop.latest - start)
        if delay > 0:
            departure += delay
            starts, waits, back = run(departure)

    violations: list[str] = []
    load = sum(stop.demand for stop in stops)
    if load > problem.fleet.capacity:
        violations.append(f"load {load} exceeds capacity {problem.fleet.capacity}")
    for start, stop in zip(starts, stops, strict=True):
        if start > stop.latest:
            violations.append(f"stop {stop.id!r} served at {start}, after {stop.latest}")
    if back > problem.route_end:
        violations.append(f"returns at {back}, after {problem.route_end}")

    path = [0, *nodes, 0]
    distance = sum(int(problem.distance[a, b]) for a, b in zip(path, path[1:]))
    return PlannedRoute(
        stops=tuple(stop_ids),
        etas=tuple(starts),
        departure=departure,
        return_time=back,
        load=load,
        distance=distance,
        violations=tuple(violations),
    )


def plan_routes_from_sequences(
    problem: RoutingProblem,
    sequences: Sequence[Sequence[StopId]],
) -> RoutePlan:
    """Builds the plan for the given visit orders; stops in no sequence are unassigned."""
    routes = tuple(schedule_route(problem, seq) for seq in sequences if len(seq) > 0)
    violations = [v for route in routes for v in route.violations]

    seen: set[StopId] = set()
    for route in routes:
        for stop_id in route.stops:
            if stop_id in seen:
                violations.append(f"stop {stop_id!r} is visited more than once")
            seen.add(stop_id)
    if len(routes) > problem.fleet.count:
        violations.append(f"{len(routes)} routes for {problem.fleet.count} vehicles")
    unassigned = tuple(stop.id for stop in problem.stops if stop.id not in seen)

    distance = sum(route.distance for route in routes)
    duration = sum(route.duration for route in routes)
    fleet = problem.fleet
    cost = (
        fleet.cost_per_distance * distance
        + fleet.cost_per_duration * duration
        + fleet.cost_per_route * len(routes)
    )
    return RoutePlan(
        routes=routes,
        unassigned=unassigned,
        distance=distance,
        duration=duration,
        cost=cost,
        feasible=not violations and not unassigned,
        violations=tuple(violations),
    )


def build_planar_problem(
    depot: Depot,
    stops: Sequence[Stop],
    fleet: Fleet,
    *,
    scale: int = 10,
    name: str = "",
) -> RoutingProblem:
    """Builds a problem on the plane under the DIMACS convention.

    Each arc is `floor(scale * euclid)` and travel time equals distance. Times (windows,
    service, shift) are given in natural units and multiplied by `scale` here, so the returned
    problem's stops carry scaled times; coordinates are kept as given.
    """
    points = np.array([(depot.x, depot.y), *((s.x, s.y) for s in stops)], dtype=np.float64)
    matrix = planar_arc_matrix(points, scale=scale)

    def times(limit: int) -> int:
        return limit if limit >= NO_LIMIT else limit * scale

    return RoutingProblem(
        depot=replace(depot, earliest=times(depot.earliest), latest=times(depot.latest)),
        stops=tuple(
            replace(
                s, earliest=times(s.earliest), latest=times(s.latest), service=s.service * scale
            )
            for s in stops
        ),
        fleet=replace(
            fleet, shift_start=times(fleet.shift_start), shift_end=times(fleet.shift_end)
        ),
        distance=matrix,
        duration=matrix,
        scale=scale,
        name=name,
    )


def planar_arc_matrix(points: npt.NDArray[np.float64], *, scale: int = 10) -> IntMatrix:
    """`floor(scale * euclid)` between every pair of points."""
    diff = points[:, None, :] - points[None, :, :]
    squared = (diff**2).sum(axis=-1) * scale * scale
    # sqrt of an exact integer is correctly rounded, so for integer coordinates the floor is
    # exact: no 9.999999 -> 9 surprises on arcs of whole length.
    return np.floor(np.sqrt(squared)).astype(np.int64)


def haversine_metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_METRES * math.asin(math.sqrt(a))


def build_geographic_problem(
    depot: Depot,
    stops: Sequence[Stop],
    fleet: Fleet,
    *,
    speed_kmh: float,
    detour_factor: float = 1.3,
    name: str = "",
) -> RoutingProblem:
    """Builds a city problem from longitude/latitude: metres and seconds.

    Streets are longer than the great circle; `detour_factor` stretches it (about 1.2-1.4 in
    gridded cities) until a road-network matrix replaces this estimate. Times on the stops and
    fleet are taken as seconds, unchanged.
    """
    if speed_kmh <= 0:
        raise ValueError("speed must be positive")
    if detour_factor < 1:
        raise ValueError("detour factor below 1 would make roads shorter than the great circle")
    points = [(depot.x, depot.y), *((s.x, s.y) for s in stops)]
    size = len(points)
    metres = np.zeros((size, size), dtype=np.float64)
    for i in range(size):
        for j in range(i + 1, size):
            d = haversine_metres(*points[i], *points[j]) * detour_factor
            metres[i, j] = metres[j, i] = d
    speed_mps = speed_kmh / 3.6
    return RoutingProblem(
        depot=depot,
        stops=tuple(stops),
        fleet=fleet,
        distance=np.rint(metres).astype(np.int64),
        # Rounded up: an ETA that is a second late is worse than one a second early.
        duration=np.ceil(metres / speed_mps).astype(np.int64),
        scale=1,
        name=name,
    )
