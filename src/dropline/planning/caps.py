"""Cap sizing: a distribution of the units the next drop will be asked for, and the cap that
trades the chance of selling out against the units left over.

Demand is built from signals the shop already has (all pure arithmetic here)::

    buyers = sum over member segments of members_s * rate_s        (members by segment now)
           + non-member buyers * attention_ratio                   (the cadence's forecast)
           + waitlist carried over * waitlist_conversion           (who missed out last time)
    units  = buyers * units_per_buyer

``rate_s`` is what past drops showed: the people of segment s who *wanted* the drop (bought,
or joined its waitlist once it sold out, so a sold-out drop's demand is not cut at its cap),
over the members of s at the time. The spread is the spread of past drops around this
forecast (log scale), drawn as a Poisson-lognormal so small drops stay discrete.

For a cap c: P(sell out) = P(D >= c); expected left over E[(c - D)+]; and with made-to-order
beyond the cap, E[(D - c)+] units are made after the drop from real orders, not guessed
ahead. The recommendation is the largest cap that still sells out with ``target`` probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

DEFAULT_TARGET = 0.8  # sell out four times in five
DRAWS = 20_000
MIN_SIGMA = 0.15  # never claim more certainty than this much spread (a drop is not a clock)


@dataclass(frozen=True)
class DropOutcome:
    """One past drop, as the demand model sees it."""

    drop_id: int
    slug: str
    day: date
    cap: int
    units_sold: int
    unmet_units: int  # waitlist quantity not served (demand beyond the cap)
    members_by_segment: Mapping[str, int]  # members of each segment when it opened
    wanted_by_segment: Mapping[str, int]  # buyers + unmet waitlist people, by segment
    non_member_wanted: int
    attention: float  # touches on the drop day
    waitlist_offered: int = 0
    waitlist_claimed: int = 0
    units_by_variant: Mapping[int, int] = field(default_factory=dict)

    @property
    def demand_units(self) -> int:
        return self.units_sold + self.unmet_units

    @property
    def sold_out(self) -> bool:
        return self.cap > 0 and self.units_sold >= self.cap

    @property
    def buyers(self) -> int:
        return sum(self.wanted_by_segment.values()) + self.non_member_wanted


@dataclass(frozen=True)
class DemandModel:
    rates: dict[str, float]  # segment -> share of its members who want a drop
    non_member_buyers: float
    mean_attention: float
    units_per_buyer: float
    sigma: float  # log-scale spread of past drops around the forecast
    waitlist_conversion: float
    drops: int

    def as_dict(self) -> dict[str, object]:
        return {"rates_by_segment": {k: round(v, 4) for k, v in self.rates.items()},
                "non_member_buyers": round(self.non_member_buyers, 2),
                "units_per_buyer": round(self.units_per_buyer, 3),
                "spread_log_sd": round(self.sigma, 3),
                "waitlist_conversion": round(self.waitlist_conversion, 3),
                "drops": self.drops}


@dataclass(frozen=True)
class DemandSignals:
    members_by_segment: Mapping[str, int]
    waitlist: int = 0  # people still waiting from earlier sold-out drops
    expected_attention: float | None = None  # from the cadence plan; None: the usual


def _buyers(model: DemandModel, signals: DemandSignals) -> float:
    members = sum(n * model.rates.get(seg, 0.0) for seg, n in signals.members_by_segment.items())
    ratio = 1.0
    if signals.expected_attention is not None and model.mean_attention > 0:
        ratio = signals.expected_attention / model.mean_attention
    return members + model.non_member_buyers * ratio + signals.waitlist * \
        model.waitlist_conversion


def expected_units(model: DemandModel, signals: DemandSignals) -> float:
    return _buyers(model, signals) * model.units_per_buyer


def fit_demand(history: Sequence[DropOutcome]) -> DemandModel:
    if not history:
        return DemandModel({}, 0.0, 0.0, 1.0, 0.5, 0.5, 0)
    segments = sorted({s for d in history for s in d.members_by_segment})
    rates = {}
    for seg in segments:
        members = sum(d.members_by_segment.get(seg, 0) for d in history)
        wanted = sum(d.wanted_by_segment.get(seg, 0) for d in history)
        rates[seg] = wanted / members if members else 0.0
    non_member = float(np.mean([d.non_member_wanted for d in history]))
    attention = float(np.mean([d.attention for d in history]))
    units = sum(d.demand_units for d in history)
    buyers = sum(d.buyers for d in history)
    per_buyer = units / buyers if buyers else 1.0
    offered = sum(d.waitlist_offered for d in history)
    conversion = (sum(d.waitlist_claimed for d in history) / offered) if offered else 0.5
    model = DemandModel(rates, non_member, attention, per_buyer, MIN_SIGMA, conversion,
                        len(history))
    logs = []
    for d in history:
        predicted = _buyers(model, DemandSignals(d.members_by_segment,
                                                 expected_attention=d.attention))
        if predicted > 0 and d.buyers > 0:
            logs.append(math.log(d.buyers / predicted))
    sigma = float(np.std(logs, ddof=1)) if len(logs) >= 3 else 0.5
    return DemandModel(rates, non_member, attention, per_buyer, max(sigma, MIN_SIGMA),
                       conversion, len(history))


def demand_draws(model: DemandModel, signals: DemandSignals, *, draws: int = DRAWS,
                 seed: int = 0) -> np.ndarray:
    """Units wanted, ``draws`` samples (Poisson-lognormal buyers times units per buyer)."""
    rng = np.random.default_rng(seed)
    mean = max(_buyers(model, signals), 0.0)
    scale = np.exp(model.sigma * rng.standard_normal(draws) - model.sigma ** 2 / 2)
    buyers = rng.poisson(mean * scale)
    return np.rint(buyers * model.units_per_buyer).astype(int)


@dataclass(frozen=True)
class CapOption:
    cap: int
    p_sell_out: float
    expected_left_over: float
    expected_made_to_order: float

    def as_dict(self) -> dict[str, float]:
        return {"cap": self.cap, "p_sell_out": round(self.p_sell_out, 3),
                "expected_left_over": round(self.expected_left_over, 2),
                "expected_made_to_order": round(self.expected_made_to_order, 2)}


@dataclass(frozen=True)
class CapPlan:
    recommended: CapOption
    options: list[CapOption]  # every cap from 1 to the 99th percentile of demand
    demand_mean: float
    demand_p10: float
    demand_p90: float
    target: float
    reason: str
    by_variant: dict[int, CapOption] = field(default_factory=dict)
    made_to_order_ships: date | None = None

    def as_dict(self) -> dict[str, object]:
        return {"recommended_cap": self.recommended.cap, **self.recommended.as_dict(),
                "demand": {"mean": round(self.demand_mean, 1), "p10": self.demand_p10,
                           "p90": self.demand_p90},
                "target_p_sell_out": self.target, "reason": self.reason,
                "by_variant": {str(k): v.as_dict() for k, v in self.by_variant.items()},
                "made_to_order_ships": self.made_to_order_ships.isoformat()
                if self.made_to_order_ships else None,
                "trade_off": [o.as_dict() for o in self.options]}


def cap_options(draws: np.ndarray, *, top: int | None = None) -> list[CapOption]:
    d = np.sort(np.asarray(draws))
    top = top or max(int(np.percentile(d, 99)), 1)
    out = []
    for cap in range(1, top + 1):
        out.append(CapOption(cap, float(np.mean(d >= cap)),
                             float(np.mean(np.maximum(cap - d, 0))),
                             float(np.mean(np.maximum(d - cap, 0)))))
    return out


def choose_cap(options: Sequence[CapOption], target: float) -> CapOption:
    """The largest cap that still sells out with at least ``target`` probability."""
    good = [o for o in options if o.p_sell_out >= target]
    return good[-1] if good else options[0]


def variant_shares(history: Sequence[DropOutcome], variant_ids: Sequence[int]) -> dict[int, float]:
    """Share of units by variant in past drops that sold them, smoothed towards equal shares
    (one pseudo-unit each) so a new variant is not given zero."""
    counts = {v: 1.0 + sum(d.units_by_variant.get(v, 0) for d in history) for v in variant_ids}
    total = sum(counts.values())
    return {v: c / total for v, c in counts.items()}


def size_cap(model: DemandModel, signals: DemandSignals, *, target: float = DEFAULT_TARGET,
             variant_ids: Sequence[int] = (), history: Sequence[DropOutcome] = (),
             drop_day: date | None = None, lead_days: int = 3, seed: int = 0) -> CapPlan:
    draws = demand_draws(model, signals, seed=seed)
    options = cap_options(draws)
    best = choose_cap(options, target)
    by_variant: dict[int, CapOption] = {}
    if variant_ids:
        rng = np.random.default_rng(seed + 1)
        shares = variant_shares(history, variant_ids)
        for vid, share in shares.items():
            part = rng.binomial(draws, share)
            by_variant[vid] = choose_cap(cap_options(part), target)
    p10, p90 = (float(x) for x in np.percentile(draws, [10, 90]))
    ships = drop_day + timedelta(days=lead_days) if drop_day else None
    reason = (f"demand forecast {np.mean(draws):.0f} units (80% between {p10:.0f} and "
              f"{p90:.0f}); a cap of {best.cap} sells out with probability "
              f"{best.p_sell_out:.0%} and leaves {best.expected_left_over:.1f} units on "
              f"average; the expected {best.expected_made_to_order:.1f} units wanted beyond it "
              "are taken as made-to-order" + (f", shipping {ships.isoformat()}" if ships else ""))
    return CapPlan(best, options, float(np.mean(draws)), p10, p90, target, reason, by_variant,
                   ships)
