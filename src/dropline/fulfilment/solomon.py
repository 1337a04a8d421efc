"""Solomon / Gehring-Homberger VRPTW benchmark files, under the DIMACS convention.

The published best-known costs count distance only, each arc truncated to one decimal. In
integer form that is `floor(10 * euclid)` per arc with every time multiplied by 10
(`build_planar_problem(scale=10)`), and a cost is the integer total divided by 10.
Customers keep the numbers they have in the file (1..n); the depot is 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import vrplib

from dropline.fulfilment.vrp import (
    Depot,
    Fleet,
    RoutingProblem,
    Stop,
    StopId,
    build_planar_problem,
)

__all__ = [
    "DIMACS_SCALE",
    "BestKnown",
    "InstanceFormatError",
    "dimacs_cost",
    "read_best_known",
    "read_solomon",
]

DIMACS_SCALE = 10


class InstanceFormatError(ValueError):
    """The file exists but is not a readable instance or solution."""


@dataclass(frozen=True)
class BestKnown:
    routes: list[list[int]]
    cost: float


WHOLE_NUMBER = re.compile(r"-?[0-9]+")
CUSTOMER_FIELDS = 7  # number, x, y, demand, ready time, due date, service time


def _check_customer_lines(path: Path, text: str) -> None:
    """vrplib reads the customer table with numpy, which turns a field it cannot read into -1
    without a word (a coordinate of "4O" would move the customer and the cost): every line
    of the table must hold seven whole numbers."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if line.split()[:2] == ["CUST", "NO."]),
                  None)
    if header is None:
        return  # not the Solomon layout: vrplib says so
    for line in lines[header + 1:]:
        fields = line.split()
        if len(fields) != CUSTOMER_FIELDS or not all(WHOLE_NUMBER.fullmatch(f) for f in fields):
            shown = " ".join(fields)[:80]
            raise InstanceFormatError(
                f"{path.name}: customer line {shown!r} must hold {CUSTOMER_FIELDS} whole "
                "numbers (number, x, y, demand, ready time, due date, service time)")


def read_solomon(path: str | Path) -> RoutingProblem:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InstanceFormatError(f"{path.name} is not a Solomon instance: {exc}") from exc
    _check_customer_lines(path, text)
    try:
        raw = vrplib.read_instance(path, instance_format="solomon")
        coords, demand = raw["node_coord"], raw["demand"]
        windows, service = raw["time_window"], raw["service_time"]
        count, capacity = int(raw["vehicles"]), int(raw["capacity"])
    # vrplib raises RuntimeError for a file that is not Solomon format, and whatever its
    # parser tripped on for one that is malformed.
    except (RuntimeError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise InstanceFormatError(f"{path.name} is not a Solomon instance: {exc}") from exc
    if len(coords) < 2:
        raise InstanceFormatError(f"{path.name} has no customers")
    if count < 1 or capacity < 1:
        raise InstanceFormatError(f"{path.name} needs at least one vehicle with a capacity "
                                  f"above 0 (it has {count}, of capacity {capacity})")

    depot = Depot(x=float(coords[0][0]), y=float(coords[0][1]),
                  earliest=int(windows[0][0]), latest=int(windows[0][1]))
    stops = [
        Stop(
            id=number,
            x=float(coords[number][0]),
            y=float(coords[number][1]),
            demand=int(demand[number]),
            earliest=int(windows[number][0]),
            latest=int(windows[number][1]),
            service=int(service[number]),
        )
        for number in range(1, len(coords))
    ]
    # Vehicles must be back by the depot's due date; that is the shift.
    fleet = Fleet(count=count, capacity=capacity,
                  shift_start=depot.earliest, shift_end=depot.latest)
    return build_planar_problem(depot, stops, fleet, scale=DIMACS_SCALE, name=str(raw["name"]))


def read_best_known(path: str | Path) -> BestKnown:
    """Reads a `.sol` file (VRPLIB solution format: `Route #k: ...` lines and a `Cost` line)."""
    path = Path(path)
    try:
        raw = vrplib.read_solution(path)
        routes = [[int(c) for c in route] for route in raw["routes"]]
        cost = float(raw["cost"])
    except (RuntimeError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise InstanceFormatError(f"{path.name} is not a VRPLIB solution: {exc}") from exc
    return BestKnown(routes=routes, cost=cost)


def dimacs_cost(problem: RoutingProblem, routes: Sequence[Sequence[StopId]]) -> float:
    """Total distance of the routes (depot to depot) in natural units, to one decimal."""
    total = 0
    for route in routes:
        path = [0, *(problem.node(stop_id) for stop_id in route), 0]
        total += sum(int(problem.distance[a, b]) for a, b in zip(path, path[1:]))
    # Integer tenths divided once, so the figure prints exactly as the BKS files do.
    return round(total / problem.scale, 1)
