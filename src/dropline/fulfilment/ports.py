"""What fulfilment needs from the outside world, as small Protocols: a geocoder (postcode to
point) and a route solver (visit orders for a window's stops). The adapters in
``dropline.adapters.geocoding`` and ``dropline.adapters.routing`` implement them; the composition
root chooses which, and fulfilment takes them as parameters."""

from __future__ import annotations

from typing import Protocol

from dropline.fulfilment.rules import GeoPoint
from dropline.fulfilment.vrp import RoutePlan, RoutingProblem

__all__ = ["Geocoder", "RouteSolver"]


class Geocoder(Protocol):
    def locate(self, postcode: str) -> GeoPoint | None:
        """A point for the postcode, or None when this geocoder does not know it."""
        ...


class RouteSolver(Protocol):
    def solve(self, problem: RoutingProblem, *, max_seconds: float, seed: int = 0) -> RoutePlan:
        """Plans routes within `max_seconds` of search; the same seed gives the same search."""
        ...
