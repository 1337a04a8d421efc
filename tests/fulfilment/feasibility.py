"""An independent feasibility checker for route plans, written from the problem definition.

It reads only the problem's data (stops, depot, fleet, matrices) and never calls the planning
code in `dropline.fulfilment.vrp`, so a solver or scheduler bug cannot vouch for itself. The rules:

- every stop is visited exactly once, or reported unassigned (and then not visited);
- a route's total demand fits the vehicle's capacity;
- service at a stop starts within its window; arriving early means waiting;
- vehicles leave no earlier than the depot opens and the shift starts, and are back before the
  depot closes and the shift ends;
- there are no more routes than vehicles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from dropline.fulfilment.vrp import RoutePlan, RoutingProblem, Stop, StopId


@dataclass
class FeasibilityReport:
    violations: list[str] = field(default_factory=list)
    unassigned: list[StopId] = field(default_factory=list)
    distance: int = 0
    duration: int = 0  # shortest possible: each route leaves as late as its timing allows
    cost: int = 0

    @property
    def feasible(self) -> bool:
        return not self.violations and not self.unassigned


def check_routes(
    problem: RoutingProblem,
    routes: Sequence[Sequence[StopId]],
    *,
    unassigned: Sequence[StopId] = (),
) -> FeasibilityReport:
    report = FeasibilityReport()
    node_of = {stop.id: i for i, stop in enumerate(problem.stops, start=1)}
    stop_of = {stop.id: stop for stop in problem.stops}
    earliest_out = max(problem.depot.earliest, problem.fleet.shift_start)
    latest_back = min(problem.depot.latest, problem.fleet.shift_end)

    visits = Counter(stop_id for route in routes for stop_id in route)
    for stop_id, times in visits.items():
        if stop_id not in stop_of:
            report.violations.append(f"unknown stop {stop_id!r}")
        elif times > 1:
            report.violations.append(f"stop {stop_id!r} visited {times} times")
    declared = set(unassigned)
    for stop in problem.stops:
        if stop.id in declared and visits[stop.id]:
            report.violations.append(f"stop {stop.id!r} is unassigned but visited")
        elif stop.id in declared:
            report.unassigned.append(stop.id)
        elif not visits[stop.id]:
            report.violations.append(f"stop {stop.id!r} is neither visited nor unassigned")

    used = [route for route in routes if len(route) > 0]
    if len(used) > problem.fleet.count:
        report.violations.append(f"{len(used)} routes but {problem.fleet.count} vehicles")

    for number, route in enumerate(used, start=1):
        if any(stop_id not in stop_of for stop_id in route):
            continue  # already reported; its timing would be meaningless
        path = [0, *(node_of[stop_id] for stop_id in route), 0]
        report.distance += sum(int(problem.distance[a, b]) for a, b in zip(path, path[1:]))

        load = sum(stop_of[stop_id].demand for stop_id in route)
        if load > problem.fleet.capacity:
            report.violations.append(
                f"route {number}: load {load} over capacity {problem.fleet.capacity}"
            )

        late, back = _drive(problem, route, node_of, stop_of, departure=earliest_out)
        for stop_id, start, latest in late:
            report.violations.append(
                f"route {number}: stop {stop_id!r} starts at {start}, window closes {latest}"
            )
        if back > latest_back:
            report.violations.append(f"route {number}: back at {back}, due by {latest_back}")
        leave = _latest_departure(problem, route, node_of, stop_of, earliest_out, back)
        report.duration += back - leave

    fleet = problem.fleet
    report.cost = (
        fleet.cost_per_distance * report.distance
        + fleet.cost_per_duration * report.duration
        + fleet.cost_per_route * len(used)
    )
    return report


def check_plan(problem: RoutingProblem, plan: RoutePlan) -> FeasibilityReport:
    """Checks the plan's routes and also every figure the plan claims about them."""
    report = check_routes(
        problem, [route.stops for route in plan.routes], unassigned=plan.unassigned
    )
    feasible = report.feasible  # judged on the routes alone, before any false claim is added
    claims = report.violations
    if plan.distance != report.distance:
        claims.append(f"plan claims distance {plan.distance}, recomputed {report.distance}")
    if plan.duration != report.duration:
        claims.append(f"plan claims duration {plan.duration}, recomputed {report.duration}")
    if plan.cost != report.cost:
        claims.append(f"plan claims cost {plan.cost}, recomputed {report.cost}")
    if plan.feasible != feasible:
        claims.append(f"plan claims feasible={plan.feasible}, recomputed {feasible}")

    stop_of = {stop.id: stop for stop in problem.stops}
    node_of = {stop.id: i for i, stop in enumerate(problem.stops, start=1)}
    dur = problem.duration
    for number, route in enumerate(plan.routes, start=1):
        if any(stop_id not in stop_of for stop_id in route.stops):
            continue
        demand = sum(stop_of[stop_id].demand for stop_id in route.stops)
        if route.load != demand:
            claims.append(f"route {number}: claims load {route.load}, recomputed {demand}")
        if len(route.etas) != len(route.stops):
            claims.append(f"route {number}: {len(route.etas)} ETAs for {len(route.stops)} stops")
            continue
        # The claimed timetable must be one a vehicle could actually drive.
        if route.departure < max(problem.depot.earliest, problem.fleet.shift_start):
            claims.append(f"route {number}: leaves at {route.departure}, before opening")
        clock, here = route.departure, 0
        for stop_id, eta in zip(route.stops, route.etas):
            stop, node = stop_of[stop_id], node_of[stop_id]
            if eta < clock + int(dur[here, node]):
                claims.append(f"route {number}: ETA {eta} at {stop_id!r} is unreachable")
            if not stop.earliest <= eta <= stop.latest:
                claims.append(f"route {number}: ETA {eta} at {stop_id!r} outside its window")
            clock, here = eta + stop.service, node
        if route.return_time < clock + int(dur[here, 0]):
            claims.append(f"route {number}: claims return {route.return_time}, too early")
    return report


Late = list[tuple[StopId, int, int]]


def _drive(
    problem: RoutingProblem,
    route: Sequence[StopId],
    node_of: dict[StopId, int],
    stop_of: dict[StopId, Stop],
    *,
    departure: int,
) -> tuple[Late, int]:
    """Drives a route leaving at `departure`: (late stops, return time)."""
    clock, here = departure, 0
    late: Late = []
    for stop_id in route:
        stop, node = stop_of[stop_id], node_of[stop_id]
        start = max(clock + int(problem.duration[here, node]), stop.earliest)
        if start > stop.latest:
            late.append((stop_id, start, stop.latest))
        clock, here = start + stop.service, node
    return late, clock + int(problem.duration[here, 0])


def _latest_departure(
    problem: RoutingProblem,
    route: Sequence[StopId],
    node_of: dict[StopId, int],
    stop_of: dict[StopId, Stop],
    earliest: int,
    back: int,
) -> int:
    """Latest departure that is on time everywhere and still back at `back`, by bisection.

    Leaving later never helps punctuality and never brings the vehicle back earlier, so both
    conditions hold on an interval [earliest, answer]. A late route just leaves at `earliest`.
    """
    def fine(departure: int) -> bool:
        late, returned = _drive(problem, route, node_of, stop_of, departure=departure)
        return not late and returned == back

    if not fine(earliest):
        return earliest
    # fine(low) holds; leaving after `back` cannot return at `back`.
    low, high = earliest, back + 1
    while high - low > 1:
        middle = (low + high) // 2
        if fine(middle):
            low = middle
        else:
            high = middle
    return low
