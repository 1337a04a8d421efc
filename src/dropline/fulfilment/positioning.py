"""Stock where demand is: how many units of each variant each hub should hold, and the
transfers and production runs that get them there. Pure functions over plain data.

The demand map is units per day per (hub, variant) in each hub's reach:

* past orders by area (units a day, each order counted at the nearest hub within reach),
* members by area (each member adds ``member_units_per_day``), and
* a coming drop: the planner's demand estimate, never above the drop's cap, spread over the
  hubs by their share of the past orders and members (what is out of every hub's reach stays
  central).

A hub's target is the demand over ``cover_days`` times ``safety``, rounded up, when it reaches
``min_units`` (a variant sold once a month is not worth a shelf at every hub). The shortfall
against what the hub holds and has on its way becomes a transfer from the central warehouse
while it has units to spare (after its own ``central_reserve``), else a production run at the
micro-factory (``production_lead_hours``, 48 h by default). Each proposal says when its units
arrive, and whether that is after ``needed_by`` (the drop's start).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["DropDemand", "PositionTarget", "Proposal", "demand_map", "hub_shares",
           "positioning_plan", "proposals"]

Key = tuple[str, int]  # (hub code, variant id)


@dataclass(frozen=True)
class DropDemand:
    """A coming drop: the planner's estimate of units per variant and the drop's cap."""

    estimate: Mapping[int, float]
    cap: Mapping[int, int]
    days: float = 1.0  # the drop's sales spread over this many days


def hub_shares(orders_by_hub: Mapping[str, float], members_by_hub: Mapping[str, int],
               *, out_of_reach: float = 0.0, member_weight: float = 1.0) -> dict[str, float]:
    """Each hub's share of the demand (orders plus weighted members); the rest
    (``out_of_reach`` orders) is central's and is not in the result."""
    weight = {hub: orders_by_hub.get(hub, 0.0) + member_weight * members_by_hub.get(hub, 0)
              for hub in set(orders_by_hub) | set(members_by_hub)}
    total = sum(weight.values()) + out_of_reach
    if total <= 0:
        return {hub: 0.0 for hub in weight}
    return {hub: w / total for hub, w in sorted(weight.items())}


def demand_map(past_units: Mapping[Key, float], *, past_days: float,
               members_by_hub: Mapping[str, int] | None = None,
               member_units_per_day: float = 0.0, shares: Mapping[str, float] | None = None,
               drop: DropDemand | None = None) -> dict[Key, float]:
    """Units a day per (hub, variant) (see the module docstring)."""
    if past_days <= 0:
        raise ValueError("past_days must be positive")
    daily: dict[Key, float] = defaultdict(float)
    for key, units in past_units.items():
        daily[key] += units / past_days
    if members_by_hub and member_units_per_day:
        variants = sorted({variant for _, variant in past_units}) or []
        for hub, members in members_by_hub.items():
            for variant in variants:
                daily[(hub, variant)] += members * member_units_per_day / len(variants)
    if drop is not None and shares:
        for variant, estimate in drop.estimate.items():
            units = min(estimate, drop.cap.get(variant, math.inf)) / max(drop.days, 1e-9)
            for hub, share in shares.items():
                daily[(hub, variant)] += units * share
    return dict(daily)


@dataclass(frozen=True)
class PositionTarget:
    hub: str
    variant_id: int
    daily_units: float
    target: int
    on_hand: int
    in_transit: int

    @property
    def shortfall(self) -> int:
        return max(0, self.target - self.on_hand - self.in_transit)


def positioning_plan(daily: Mapping[Key, float], *, on_hand: Mapping[Key, int],
                     in_transit: Mapping[Key, int] | None = None, cover_days: float = 2.0,
                     safety: float = 1.3, min_units: int = 2) -> list[PositionTarget]:
    """A target per (hub, variant) with demand: ``ceil(daily * cover_days * safety)`` units,
    or 0 below ``min_units`` (what the hub holds then is left to sell through)."""
    if cover_days <= 0 or safety < 1:
        raise ValueError("cover_days must be positive and safety at least 1")
    in_transit = in_transit or {}
    targets = []
    for (hub, variant), units in sorted(daily.items()):
        target = math.ceil(units * cover_days * safety - 1e-9)
        if target < min_units:
            target = 0
        targets.append(PositionTarget(hub, variant, round(units, 3), target,
                                      on_hand.get((hub, variant), 0),
                                      in_transit.get((hub, variant), 0)))
    return targets


@dataclass(frozen=True)
class Proposal:
    kind: Literal["transfer", "production"]
    source: str
    destination: str
    variant_id: int
    quantity: int
    lead_hours: float
    arrives_at: datetime
    late: bool  # arrives after needed_by


def proposals(targets: list[PositionTarget], *, central_code: str,
              central_on_hand: Mapping[int, int], factory_code: str | None, now: datetime,
              transfer_lead_hours: float = 12.0, production_lead_hours: float = 48.0,
              central_reserve: Mapping[int, int] | None = None,
              needed_by: datetime | None = None) -> list[Proposal]:
    """Transfers from central while it has units beyond its reserve, production runs at the
    micro-factory for the rest (none without one); biggest shortfalls first."""
    spare = {variant: units - (central_reserve or {}).get(variant, 0)
             for variant, units in central_on_hand.items()}
    result = []
    for target in sorted(targets, key=lambda t: (-t.shortfall, t.hub, t.variant_id)):
        need = target.shortfall
        if need <= 0:
            continue
        moved = min(need, max(spare.get(target.variant_id, 0), 0))
        if moved:
            spare[target.variant_id] -= moved
            arrives = now + timedelta(hours=transfer_lead_hours)
            result.append(Proposal("transfer", central_code, target.hub, target.variant_id,
                                   moved, transfer_lead_hours, arrives,
                                   needed_by is not None and arrives > needed_by))
        if need - moved and factory_code is not None:
            arrives = now + timedelta(hours=production_lead_hours)
            result.append(Proposal("production", factory_code, target.hub, target.variant_id,
                                   need - moved, production_lead_hours, arrives,
                                   needed_by is not None and arrives > needed_by))
    return result
