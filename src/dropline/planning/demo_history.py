"""The demo brand's year of drops, invented from a known attention cycle (pure: a random
stream and "now" in, plans out), so that planning has something true to learn and the tests
and the backtest can check what it learns against what was put in.

The truth the demo is built from (``TRUTH``): attention rises with a half-life of 2 days
before a drop and decays with a half-life of 4 days after it; the bump a drop raises follows
``model.RecoveryCurve(peak, tau_recover=12, tau_fade=90)`` of the days since the previous
drop (best gap ~26 days). The people who want a drop are members (by segment) and customers,
each with a segment's probability scaled by that same recovery. The brand sets each cap by
guesswork (0.6x to 1.5x of what turned out to be wanted), as brands do today.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dropline.planning.model import RecoveryCurve

GAPS = (28, 21, 42, 18, 35, 56, 24, 31, 45, 27)  # days between the 11 past drops
FIRST_DROP_DAYS_AGO = sum(GAPS) + 9
UPCOMING_IN_DAYS = 12
BASELINE_PER_DAY = 5.0
HALF_LIFE_RISE, HALF_LIFE_DECAY = 2.0, 4.0
TRUTH = RecoveryCurve(peak=110.0, tau_recover=12.0, tau_fade=90.0)
WANT_RATE = {"founding": 0.55, "utility": 0.35, "seasonal": 0.15, "unclassified": 0.2,
             None: 0.04}  # None: a customer who is not a member
TWO_UNITS = 0.3  # share of buyers who take two (the per-person limit)
RESTOCK_SHARE = 0.4  # sold-out drops the brand restocked for its waitlist
NAMES = ("Midnight Fig", "Salt Orchard", "Smoke & Pear", "Winter Neroli", "Vetiver Rain",
         "Amber Tide", "Rhubarb Leaf", "Cedar Hush", "Night Jasmine", "Black Tea Rose",
         "Green Fig", "Ember Oud")


@dataclass(frozen=True)
class Want:
    customer_id: int
    units: int
    variant_index: int  # which of the drop's variants
    at: datetime  # when they arrived (queue join, purchase attempt)


@dataclass(frozen=True)
class PlannedDrop:
    slug: str
    name: str
    starts_at: datetime
    ends_at: datetime
    cap: int
    gap_days: int
    bump: float  # the true attention bump on the day
    wants: tuple[Want, ...]  # in arrival order
    extra_queue: tuple[tuple[int, datetime], ...]  # joined the waiting room, did not buy
    restock: bool

    @property
    def demand_units(self) -> int:
        return sum(w.units for w in self.wants)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:  # normal approximation; exact enough for page views
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def attention_mean(day: float, drop_days: Sequence[float], bumps: Sequence[float]) -> float:
    mean = BASELINE_PER_DAY
    for d, bump in zip(drop_days, bumps, strict=True):
        tau = day - d
        mean += bump * (2 ** (-tau / HALF_LIFE_DECAY) if tau >= 0 else 2 ** (tau / HALF_LIFE_RISE))
    return mean


def plan_drops(rng: random.Random, *, now: datetime,
               segments: Mapping[int, str | None]) -> list[PlannedDrop]:
    """The 11 past drops (18:00 UTC, two days each) and their buyers. ``segments``: every
    customer id -> member segment (None: not a member)."""
    first = (now - timedelta(days=FIRST_DROP_DAYS_AGO)).replace(hour=18, minute=0, second=0,
                                                                 microsecond=0)
    starts = [first]
    for gap in GAPS:
        starts.append(starts[-1] + timedelta(days=gap))
    people = sorted(segments)
    plans = []
    for k, start in enumerate(starts):
        gap = GAPS[k - 1] if k else 30
        bump = float(TRUTH.bump(gap))
        share = bump / float(TRUTH.bump(TRUTH.best_gap_days))
        wants = []
        for customer in people:
            if rng.random() < WANT_RATE.get(segments[customer], 0.04) * share:
                at = start + timedelta(minutes=rng.expovariate(1 / 90))
                wants.append(Want(customer, 2 if rng.random() < TWO_UNITS else 1,
                                  0 if rng.random() < 0.6 else 1, at))
        wants.sort(key=lambda w: w.at)
        demand = sum(w.units for w in wants)
        cap = max(4, round(demand * rng.uniform(0.6, 1.5)))
        wanters = {w.customer_id for w in wants}
        extra = tuple((c, start - timedelta(minutes=rng.uniform(1, 30))) for c in people
                      if c not in wanters and rng.random() < 0.05 * share)
        plans.append(PlannedDrop(
            f"{NAMES[k % len(NAMES)].lower().replace(' & ', '-').replace(' ', '-')}-{k + 1}",
            NAMES[k % len(NAMES)], start, start + timedelta(days=2), cap, gap, bump,
            tuple(wants), extra, rng.random() < RESTOCK_SHARE))
    return plans


def page_views(rng: random.Random, plans: Sequence[PlannedDrop], *, now: datetime,
               members: Sequence[int], customers: Sequence[int]
               ) -> list[tuple[datetime, str, int | None]]:
    """(time, event type, customer) for every drop page view and member sign-in, a Poisson
    count a day around the true attention curve."""
    origin = (plans[0].starts_at - timedelta(days=9)).replace(hour=0)
    drop_days = [(p.starts_at - origin).total_seconds() / 86400 for p in plans]
    bumps = [p.bump for p in plans]
    out: list[tuple[datetime, str, int | None]] = []
    day = 0
    while origin + timedelta(days=day) < now:
        for _ in range(_poisson(rng, attention_mean(day + 0.5, drop_days, bumps))):
            at = origin + timedelta(days=day, seconds=rng.uniform(0, 86399))
            if at >= now:
                continue
            roll = rng.random()
            if roll < 0.2 and members:
                out.append((at, "member.signed_in", rng.choice(members)))
            elif roll < 0.6 and customers:
                out.append((at, "drop.viewed", rng.choice(customers)))
            else:
                out.append((at, "drop.viewed", None))
        day += 1
    return out
