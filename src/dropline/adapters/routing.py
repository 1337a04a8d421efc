"""Route solvers behind fulfilment's ``RouteSolver`` Protocol (``dropline.fulfilment.ports``,
re-exported here).

`PyVRPSolver` is the production solver (PyVRP's iterated local search). `NearestNeighbourSolver`
is a greedy baseline for benchmarks and a fallback that needs no native code. Both only decide
visit orders; `plan_routes_from_sequences` times and judges them, so plans from either solver
are computed by the same rules.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence

import numpy as np
import pyvrp
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from dropline.fulfilment.ports import RouteSolver, TravelTimes
from dropline.fulfilment.rules import GeoPoint
from dropline.fulfilment.travel import StraightLineTravel, TravelMatrix
from dropline.fulfilment.vrp import (
    RoutePlan,
    RoutingProblem,
    StopId,
    plan_routes_from_sequences,
    schedule_route,
)

__all__ = ["NearestNeighbourSolver", "OSRMTravelTimes", "PyVRPSolver", "RouteSolver",
           "serviceable_stops"]


def serviceable_stops(problem: RoutingProblem) -> list[StopId]:
    """Stops a vehicle could serve on a route of their own.

    A stop that fails even alone (too heavy, window unreachable within the shift) can never be
    planned; setting it aside as unassigned lets the rest of the window still be routed.
    """
    if problem.fleet.count == 0:
        return []
    return [stop.id for stop in problem.stops if schedule_route(problem, [stop.id]).feasible]


class PyVRPSolver:
    """PyVRP 0.14 hybrid search, minimising the fleet's cost (distance, duration, routes).

    PyVRP stops on wall-clock time, so two runs with the same seed only match when they complete
    the same number of iterations. Pass `max_iterations` to cap the search by work instead:
    whenever the cap is reached before `max_seconds`, the plan depends on the seed alone.
    """

    def __init__(self, *, max_iterations: int | None = None) -> None:
        if max_iterations is not None and max_iterations < 0:
            raise ValueError("max_iterations must be non-negative")
        self._max_iterations = max_iterations

    def solve(self, problem: RoutingProblem, *, max_seconds: float, seed: int = 0) -> RoutePlan:
        if max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
        candidates = serviceable_stops(problem)
        if not candidates:
            return plan_routes_from_sequences(problem, [])

        data = _problem_data(problem, candidates)
        stop: StoppingCriterion = MaxRuntime(max_seconds)
        if self._max_iterations is not None:
            stop = MultipleCriteria([MaxIterations(self._max_iterations), stop])
        result = pyvrp.solve(data, stop, seed=seed, collect_stats=False, display=False)

        sequences = [
            # Route activities include the depot visits at both ends; client indices count the
            # clients only, in the order they were added.
            [candidates[activity.idx] for activity in route if activity.is_client()]
            for route in result.best.routes()
        ]
        return plan_routes_from_sequences(problem, sequences)


def _problem_data(problem: RoutingProblem, stop_ids: list[StopId]) -> pyvrp.ProblemData:
    depot, fleet = problem.depot, problem.fleet
    model = pyvrp.Model()
    depot_location = model.add_location(x=depot.x, y=depot.y)
    model.add_depot(depot_location, tw_early=depot.earliest, tw_late=depot.latest)
    for stop_id in stop_ids:
        stop = problem.stop(stop_id)
        model.add_client(
            model.add_location(x=stop.x, y=stop.y),
            delivery=stop.demand,
            service_duration=stop.service,
            tw_early=stop.earliest,
            tw_late=stop.latest,
        )
    model.add_vehicle_type(
        num_available=fleet.count,
        capacity=fleet.capacity,
        tw_early=problem.route_start,
        tw_late=problem.route_end,
        unit_distance_cost=fleet.cost_per_distance,
        unit_duration_cost=fleet.cost_per_duration,
        fixed_cost=fleet.cost_per_route,
    )
    # The matrices go in whole instead of through Model.add_edge: a 1,000-stop window would be
    # a million Python Edge objects, seconds of set-up before the search starts.
    rows = [0, *(problem.node(stop_id) for stop_id in stop_ids)]
    return model.data().replace(
        distance_matrices=[problem.distance[rows][:, rows].copy()],
        duration_matrices=[problem.duration[rows][:, rows].copy()],
    )


class NearestNeighbourSolver:
    """Greedy baseline: Solomon's (1987) time-oriented nearest neighbour.

    The route grows by the stop that fits and is "nearest" in a blend of distance, time until
    service can start (travel plus waiting) and urgency (how close arrival comes to the end of
    the window), weighted 0.4 / 0.4 / 0.2 as Solomon published. Plain distance ignores windows
    and strands stops: on the Solomon set it ran out of vehicles on 7 of 42 instances.

    "Fits" means capacity holds, service starts within the stop's window (waiting allowed) and
    the vehicle can still be back by the end of the shift. When nothing fits, the route closes
    and a new one opens at the start of the shift; stops left when the fleet runs out are
    unassigned. Deterministic: the seed and the time limit are accepted for the Protocol and
    ignored.
    """

    def solve(self, problem: RoutingProblem, *, max_seconds: float, seed: int = 0) -> RoutePlan:
        dist, dur = problem.distance, problem.duration
        end = problem.route_end
        remaining = serviceable_stops(problem)
        sequences: list[list[StopId]] = []

        while remaining and len(sequences) < problem.fleet.count:
            route: list[StopId] = []
            here, clock, load = 0, problem.route_start, 0
            while True:
                best: tuple[int, int, StopId] | None = None
                for stop_id in remaining:
                    node = problem.node(stop_id)
                    stop = problem.stops[node - 1]
                    if load + stop.demand > problem.fleet.capacity:
                        continue
                    arrival = clock + int(dur[here, node])
                    start = max(arrival, stop.earliest)
                    if start > stop.latest or start + stop.service + int(dur[node, 0]) > end:
                        continue
                    # The 0.4 / 0.4 / 0.2 weights times 5, to stay in integers; ties go to
                    # the stop seen first, which keeps the result independent of float noise.
                    score = (
                        2 * int(dist[here, node])
                        + 2 * (start - clock)
                        + (stop.latest - arrival)
                    )
                    if best is None or score < best[0]:
                        best = (score, start, stop_id)
                if best is None:
                    break
                _, start, chosen = best
                node = problem.node(chosen)
                route.append(chosen)
                remaining.remove(chosen)
                here, clock = node, start + problem.stops[node - 1].service
                load += problem.stops[node - 1].demand
            if not route:
                break  # unreachable: every remaining stop fits a fresh route on its own
            sequences.append(route)

        return plan_routes_from_sequences(problem, sequences)


class OSRMTravelTimes:
    """Road-network metres and seconds from an OSRM server's table service
    (``GET {base}/table/v1/{profile}/{lon,lat;...}?annotations=duration,distance``), for
    planning windows on real streets. When the server fails, answers with anything but
    ``"code": "Ok"`` or leaves a pair unroutable, the whole matrix comes from ``fallback``
    (straight line by default) and says so in ``source``: a plan is never refused for it.
    OSRM's demo server is for light testing only; run your own for production."""

    def __init__(self, base_url: str, *, profile: str = "driving", timeout: float = 10.0,
                 fallback: TravelTimes | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.timeout = timeout
        self.fallback = fallback or StraightLineTravel()

    def matrix(self, points: Sequence[GeoPoint]) -> TravelMatrix:
        coordinates = ";".join(f"{p.longitude:.6f},{p.latitude:.6f}" for p in points)
        url = (f"{self.base_url}/table/v1/{self.profile}/{coordinates}"
               "?annotations=duration,distance")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
                body = json.loads(response.read(50_000_000))
            if body.get("code") != "Ok":
                raise ValueError(body.get("code"))
            seconds = np.array(body["durations"], dtype=np.float64)
            metres = np.array(body["distances"], dtype=np.float64)
            size = len(points)
            if seconds.shape != (size, size) or metres.shape != (size, size):
                raise ValueError("matrix of the wrong shape")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fallback = self.fallback.matrix(points)
            return TravelMatrix(fallback.metres, fallback.seconds,
                                f"{fallback.source} (OSRM failed: {str(exc)[:80]})")
        return TravelMatrix(metres, seconds, "osrm")
