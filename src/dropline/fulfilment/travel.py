"""Travel between points, behind the ``TravelTimes`` port (``fulfilment.ports``): street metres
and seconds for every pair. ``StraightLineTravel`` is the default (great-circle metres times a
detour factor, at a city speed: what the quotes and plans have always used); a road-network
matrix (OSRM's table API, ``dropline.adapters.routing.OSRMTravelTimes``) can stand in its
place for planning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dropline.fulfilment.rules import GeoPoint, _metres_matrix

__all__ = ["StraightLineTravel", "TravelMatrix"]


@dataclass(frozen=True)
class TravelMatrix:
    metres: np.ndarray  # float, [from, to]
    seconds: np.ndarray
    source: str = "straight line"


@dataclass(frozen=True)
class StraightLineTravel:
    speed_kmh: float = 18.0
    detour_factor: float = 1.3

    def matrix(self, points: Sequence[GeoPoint]) -> TravelMatrix:
        metres = _metres_matrix(points) * self.detour_factor
        return TravelMatrix(metres, metres / (self.speed_kmh / 3.6))
