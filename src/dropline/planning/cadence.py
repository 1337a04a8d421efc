"""The cadence planner: score each day ahead by the attention a drop would meet there, and
rule out the days that cannot work.

A day can fail in two ways. It **clashes** with another scheduled drop (within
``min_gap_days`` of it: two drops that close split the same attention), or its **production**
cannot be ready: the run for a drop must be made at the micro-factory (``production_days``)
and carried to the hub (``transfer_days``) before the drop opens, the factory makes one run
at a time, and runs already in progress or booked for scheduled drops hold it. Everything
here is pure: dates and durations in, a ranked plan with its reasons out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from dropline.planning.model import CycleModel

DEFAULT_MIN_GAP_DAYS = 7
DEFAULT_HORIZON_DAYS = 90
SPACING_DAYS = 3  # recommended dates at least this far apart, so the list offers real choices


@dataclass(frozen=True)
class Busy:
    """The micro-factory is making something from ``start`` to ``end`` (exclusive)."""

    start: date
    end: date
    what: str

    def overlaps(self, start: date, end: date) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class PlanningInputs:
    today: date
    past_drop_days: Sequence[date]
    scheduled: Sequence[tuple[str, date]] = ()  # (name, day) of drops already scheduled
    factory_busy: Sequence[Busy] = ()  # runs in progress
    production_days: float = 2.0
    transfer_days: float = 1.0
    min_gap_days: int = DEFAULT_MIN_GAP_DAYS
    horizon_days: int = DEFAULT_HORIZON_DAYS
    units_per_touch: float = 0.0  # drop-day touch -> units wanted (from past drops)
    demand_at: Callable[[float], float] | None = None  # touches -> units; wins if given
    # Gaps the recommendation may take (``model.bounded_best_gap``: the last recommendation's
    # gap +- the step a new drop may move it); days in it rank first. None: no bound.
    gap_band: tuple[float, float] | None = None


@dataclass(frozen=True)
class Candidate:
    day: date
    gap_days: int  # since the latest drop before it (past or scheduled)
    expected_attention: float  # touches on the day
    expected_demand: float  # units
    feasible: bool
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"date": self.day.isoformat(), "gap_days": self.gap_days,
                "expected_attention": round(self.expected_attention, 1),
                "expected_demand_units": round(self.expected_demand, 1),
                "feasible": self.feasible, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class CadencePlan:
    recommended: list[Candidate]
    candidates: list[Candidate]  # every day in the horizon, in date order
    why: str
    earliest_ready: date
    production_runs_for_scheduled: list[Busy] = field(default_factory=list)
    gap_band: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, object]:
        return {"recommended": [c.as_dict() for c in self.recommended], "why": self.why,
                "gap_band_days": list(self.gap_band) if self.gap_band else None,
                "earliest_ready": self.earliest_ready.isoformat(),
                "excluded": [c.as_dict() for c in self.candidates if not c.feasible][:30]}


def _run_window(day: date, production_days: float, transfer_days: float) -> tuple[date, date]:
    """When the factory must make a drop's run so that it reaches the hub by ``day``."""
    ready_by = day - timedelta(days=math.ceil(transfer_days))
    return ready_by - timedelta(days=math.ceil(production_days)), ready_by


def plan_cadence(model: CycleModel, inputs: PlanningInputs) -> CadencePlan:
    lead = math.ceil(inputs.production_days) + math.ceil(inputs.transfer_days)
    factory_free = max([inputs.today, *(b.end for b in inputs.factory_busy)])
    earliest = factory_free + timedelta(days=lead)
    booked = [Busy(*_run_window(day, inputs.production_days, inputs.transfer_days),
                   f"the run for {name} ({day.isoformat()})") for name, day in inputs.scheduled]
    busy = [*inputs.factory_busy, *booked]
    every_drop = sorted([*inputs.past_drop_days, *(day for _, day in inputs.scheduled)])
    candidates: list[Candidate] = []
    for offset in range(1, inputs.horizon_days + 1):
        day = inputs.today + timedelta(days=offset)
        before = [d for d in every_drop if d < day]
        gap = (day - before[-1]).days if before else inputs.horizon_days
        attention = model.expected_attention(gap)
        reasons: list[str] = []
        for name, other in inputs.scheduled:
            if abs((other - day).days) < inputs.min_gap_days:
                reasons.append(f"clashes with {name} on {other.isoformat()} "
                               f"(drops at least {inputs.min_gap_days} days apart)")
        if day < earliest:
            reasons.append(f"production not ready: {lead} days of lead time from "
                           f"{factory_free.isoformat()} make {earliest.isoformat()} the earliest")
        else:
            start, end = _run_window(day, inputs.production_days, inputs.transfer_days)
            for run in busy:
                if run.overlaps(start, end):
                    reasons.append(f"its production run ({start.isoformat()} to "
                                   f"{end.isoformat()}) overlaps {run.what}")
        demand = inputs.demand_at(attention) if inputs.demand_at else \
            attention * inputs.units_per_touch
        candidates.append(Candidate(day, gap, attention, demand, not reasons, tuple(reasons)))
    band = inputs.gap_band

    def outside_band(c: Candidate) -> bool:
        return band is not None and not band[0] <= c.gap_days <= band[1]

    ranked = sorted((c for c in candidates if c.feasible),
                    key=lambda c: (outside_band(c), -c.expected_attention, c.day))
    recommended: list[Candidate] = []
    for c in ranked:
        if all(abs((c.day - r.day).days) >= SPACING_DAYS for r in recommended):
            recommended.append(c)
        if len(recommended) == 3:
            break
    return CadencePlan(recommended, candidates, _why(model, recommended, candidates, inputs),
                       earliest, booked, band)


def _why(model: CycleModel, recommended: list[Candidate], candidates: list[Candidate],
         inputs: PlanningInputs) -> str:
    if not recommended:
        return (f"no day in the next {inputs.horizon_days} days is free of clashes and "
                "production conflicts; move a scheduled drop or widen the horizon")
    top = recommended[0]
    parts = [f"{top.day.isoformat()} is {top.gap_days} days after the previous drop"]
    if model.recovery is not None and model.best_gap_days and model.recovery_days:
        parts.append(f"the best gap measured is {model.best_gap_days.estimate:.0f} days "
                     f"(90% interval {model.best_gap_days.low:.0f}-"
                     f"{model.best_gap_days.high:.0f}); attention is 90% recovered after "
                     f"{model.recovery_days.estimate:.0f} days and fades after that as the "
                     "brand stays quiet")
    parts.append(f"expected {top.expected_attention:.0f} touches on the day"
                 + (f", about {top.expected_demand:.0f} units wanted"
                    if inputs.units_per_touch or inputs.demand_at else ""))
    unconstrained = max(candidates, key=lambda c: (c.expected_attention, -c.day.toordinal()))
    if not unconstrained.feasible:
        parts.append(f"the best day overall, {unconstrained.day.isoformat()} "
                     f"({unconstrained.expected_attention:.0f} touches), is ruled out: "
                     + "; ".join(unconstrained.reasons))
    band = inputs.gap_band
    if band is not None and model.best_gap_days is not None and \
            not band[0] <= model.best_gap_days.estimate <= band[1]:
        parts.append(f"the latest drops alone point to {model.best_gap_days.estimate:.0f} days; "
                     f"the plan moves at most {(band[1] - band[0]) / 2:.0f} days per new drop, "
                     f"so it keeps to {band[0]:.0f}-{band[1]:.0f} days until more drops agree")
    if len(recommended) > 1:
        runner = recommended[1]
        parts.append(f"runner-up {runner.day.isoformat()} expects "
                     f"{runner.expected_attention:.0f}")
    return "; ".join(parts)
