"""What fulfilment needs from the outside world, as small Protocols: a geocoder (postcode to
point), a route solver (visit orders for a window's stops) and travel times between points
(straight line by default, ``fulfilment.travel``). The adapters in
``dropline.adapters.geocoding`` and ``dropline.adapters.routing`` implement them; the composition
root chooses which, and fulfilment takes them as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dropline.fulfilment.rules import GeoPoint
from dropline.fulfilment.travel import TravelMatrix
from dropline.fulfilment.vrp import RoutePlan, RoutingProblem

__all__ = ["Geocoder", "RouteSolver", "TravelTimes"]


class Geocoder(Protocol):
    def locate(self, postcode: str) -> GeoPoint | None:
        """A point for the postcode, or None when this geocoder does not know it."""
        ...


class RouteSolver(Protocol):
    def solve(self, problem: RoutingProblem, *, max_seconds: float, seed: int = 0) -> RoutePlan:
        """Plans routes within `max_seconds` of search; the same seed gives the same search."""
        ...


class TravelTimes(Protocol):
    def matrix(self, points: Sequence[GeoPoint]) -> TravelMatrix:
        """Street metres and seconds between every pair of points (row: from, column: to)."""
        ...
