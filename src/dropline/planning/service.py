"""Reads the shop once and hands plain data to the pure planners (``model``, ``cadence``,
``caps``, ``sustainability``). Read-only: planning recommends, the brand decides (creating
the drop stays ``dropline drops create``). The CLI, the API and the page all call
``plan_drops``."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.drops import service as drops
from dropline.drops.models import Drop, DropHold, DropWaitlistEntry, HoldStatus, WaitlistStatus
from dropline.errors import InvalidState
from dropline.events.models import DomainEvent
from dropline.fulfilment.models import MovementKind, MovementStatus, StockMovement
from dropline.memberships.models import Membership, MembershipTier
from dropline.memberships.rules import MembershipStatus
from dropline.orders.models import Order
from dropline.planning import signals
from dropline.planning.cadence import Busy, CadencePlan, PlanningInputs, plan_cadence
from dropline.planning.caps import (
    DEFAULT_TARGET,
    CapPlan,
    DemandModel,
    DemandSignals,
    DropOutcome,
    expected_units,
    fit_demand,
    size_cap,
)
from dropline.planning.model import (
    STEP_DAYS,
    CycleModel,
    bounded_best_gap,
    drop_weights,
    fit_cycle,
)
from dropline.planning.sustainability import DropFacts, SustainabilityRow, sustainability_rows

HISTORY_DAYS = 400
DEFAULT_PRODUCTION_DAYS = 2.0  # 48 h micro-factory run: the fulfilment demo's default
DEFAULT_TRANSFER_DAYS = 1.0
MIN_SEGMENT_TOUCHES = 200  # fewer and a segment's own cycle is noise; it is left out
ENDED_MEMBERSHIP = (MembershipStatus.failed, MembershipStatus.incomplete)


@dataclass
class ShopHistory:
    """Everything planning reads, gathered once."""

    now: datetime
    start: date
    touches: list[signals.Touch]
    drops: list[Drop]  # every drop, oldest first
    outcomes: list[DropOutcome]  # ended drops
    facts: list[DropFacts]
    members_now: dict[str, int]  # by segment (what the demand model is fitted by)
    members_by_tier: dict[str, int]  # shown beside it: tiers and segments cut differently
    waitlist_now: int
    production_days: float
    transfer_days: float
    factory_busy: list[Busy]
    units_offered: dict[int, int] = field(default_factory=dict)  # drop id -> its cap

    def series(self, segment: str = signals.ALL) -> signals.DailySeries:
        return signals.daily_counts(self.touches, start=self.start, end=self.now.date(),
                                    segment=segment)

    def _started(self, until: datetime | None) -> list[Drop]:
        cutoff = until or self.now
        return [d for d in self.drops if d.starts_at < cutoff and d.starts_at.date() >= self.start]

    def drop_indices(self, until: datetime | None = None) -> list[int]:
        return [(d.starts_at.date() - self.start).days for d in self._started(until)]

    def drop_weights(self, until: datetime | None = None) -> list[float]:
        """Each started drop's weight in the recovery fit (``model.drop_weights``), in
        ``drop_indices``' order."""
        return drop_weights([self.units_offered.get(d.id, 0) for d in self._started(until)])

    def small_drops(self, until: datetime | None = None) -> list[str]:
        return [f"{d.slug} ({self.units_offered.get(d.id, 0)} units)"
                for d, weight in zip(self._started(until), self.drop_weights(until), strict=True)
                if weight < 1]


def _members_at(memberships: list[Membership], at: datetime) -> dict[int, str]:
    return {m.customer_id: m.segment or "unclassified" for m in memberships
            if m.started_at <= at and (m.ended_at is None or m.ended_at > at)
            and m.status not in ENDED_MEMBERSHIP}


def _count(members: dict[int, str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for seg in members.values():
        out[seg] += 1
    return dict(out)


def lead_times(session: Session) -> tuple[float, float]:
    """Median production and transfer lead (days) of past stock movements; defaults if none."""
    leads: dict[MovementKind, list[float]] = defaultdict(list)
    for kind, started, due in session.execute(
            select(StockMovement.kind, StockMovement.started_at, StockMovement.due_at)):
        leads[kind].append((due - started).total_seconds() / 86400)
    production = leads.get(MovementKind.production)
    transfer = leads.get(MovementKind.transfer)
    return (statistics.median(production) if production else DEFAULT_PRODUCTION_DAYS,
            statistics.median(transfer) if transfer else DEFAULT_TRANSFER_DAYS)


def load_history(session: Session, *, now: datetime, days: int = HISTORY_DAYS) -> ShopHistory:
    start = (now - timedelta(days=days)).date()
    since = datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo)
    touches = signals.load_touches(session, since=since, until=now)
    if touches:  # days before the shop's first touch are not quiet days: they are no data
        start = max(start, min(t.at for t in touches).date())
    counts = signals.daily_counts(touches, start=start, end=now.date())
    drop_rows = list(session.scalars(select(Drop).order_by(Drop.starts_at)))
    memberships = list(session.scalars(select(Membership)))
    ids = [d.id for d in drop_rows]
    holds: dict[int, list[tuple[int, int, list[dict[str, int]], datetime | None]]] = \
        defaultdict(list)
    for drop_id, customer_id, quantity, lines, paid_at in session.execute(
            select(DropHold.drop_id, DropHold.customer_id, DropHold.quantity, DropHold.lines,
                   Order.paid_at).join(Order, Order.id == DropHold.order_id)
            .where(DropHold.drop_id.in_(ids), DropHold.status == HoldStatus.converted,
                   Order.status.in_(signals.SOLD))):
        holds[drop_id].append((customer_id, quantity, lines, paid_at))
    waits: dict[int, list[DropWaitlistEntry]] = defaultdict(list)
    for entry in session.scalars(select(DropWaitlistEntry)
                                 .where(DropWaitlistEntry.drop_id.in_(ids))):
        waits[entry.drop_id].append(entry)
    outcomes: list[DropOutcome] = []
    units_offered = {drop.id: drops.cap_of(drop, drops.drop_variants(session, drop.id))
                     for drop in drop_rows}
    for drop in drop_rows:
        if drop.ends_at > now:  # only ended drops show their whole demand
            continue
        cap = units_offered[drop.id]
        sold = sum(q for _, q, _, _ in holds[drop.id])
        members = _members_at(memberships, drop.starts_at)
        unmet = [w for w in waits[drop.id]
                 if w.status in (WaitlistStatus.waiting, WaitlistStatus.lapsed)]
        wanted_people = {c for c, *_ in holds[drop.id]} | {w.customer_id for w in unmet}
        by_segment: dict[str, int] = defaultdict(int)
        non_member = 0
        for customer in wanted_people:
            if customer in members:
                by_segment[members[customer]] += 1
            else:
                non_member += 1
        by_variant: dict[int, int] = defaultdict(int)
        for _, _, lines, _ in holds[drop.id]:
            for line in lines:
                by_variant[int(line["variant_id"])] += int(line["quantity"])
        claimed = sum(1 for w in waits[drop.id] if w.status == WaitlistStatus.claimed)
        offered = claimed + sum(1 for w in waits[drop.id]
                                if w.status in (WaitlistStatus.lapsed, WaitlistStatus.offered))
        i = (drop.starts_at.date() - start).days
        attention = float(counts.counts[i]) if 0 <= i < len(counts.counts) else 0.0
        outcomes.append(DropOutcome(
            drop.id, drop.slug, drop.starts_at.date(), cap, sold,
            sum(w.quantity for w in unmet), _count(members), dict(by_segment), non_member,
            attention, offered, claimed, dict(by_variant)))

    recent_sold_out = [d for d in drop_rows if d.ends_at <= now][-2:]
    waitlist_now = sum(1 for d in recent_sold_out for w in waits[d.id]
                       if w.status in (WaitlistStatus.waiting, WaitlistStatus.lapsed))
    production, transfer = lead_times(session)
    busy = [Busy(s.date(), due.date() + timedelta(days=1), f"production run {i} (due "
                 f"{due:%Y-%m-%d})") for i, s, due in session.execute(
        select(StockMovement.id, StockMovement.started_at, StockMovement.due_at)
        .where(StockMovement.kind == MovementKind.production,
               StockMovement.status == MovementStatus.in_progress))]
    live = _members_at(memberships, now)
    tiers = {t.id: t.slug for t in session.scalars(select(MembershipTier))}
    by_tier: dict[str, int] = defaultdict(int)
    for m in memberships:
        if m.customer_id in live and m.ended_at is None:
            by_tier[tiers.get(m.tier_id, "?")] += 1
    return ShopHistory(now, start, touches, drop_rows, outcomes, drop_facts(session, now=now),
                       _count(live), dict(by_tier), waitlist_now, production,
                       transfer, busy, units_offered)


def fit_models(history: ShopHistory, *, bootstrap: int = 30) -> dict[str, CycleModel]:
    """The brand's cycle, and each segment's own when it has enough touches."""
    days, weights = history.drop_indices(), history.drop_weights()
    models = {signals.ALL: fit_cycle(history.series().counts, days, label="all shoppers",
                                     bootstrap=bootstrap, weights=weights)}
    for segment in signals.segments_of(history.touches):
        series = history.series(segment)
        if series.counts.sum() >= MIN_SEGMENT_TOUCHES:
            models[segment] = fit_cycle(series.counts, days, label=segment,
                                        bootstrap=max(bootstrap // 5, 4), weights=weights)
    return models


@dataclass
class DropPlan:
    now: datetime
    models: dict[str, CycleModel]
    cadence: CadencePlan
    demand: DemandModel
    caps: list[tuple[date, CapPlan]]  # one per recommended date
    upcoming: list[tuple[Drop, int, CapPlan]]  # scheduled drops (cap now), sized today
    sustainability: list[SustainabilityRow]
    history: ShopHistory = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        caps = {day: plan for day, plan in self.caps}
        return {
            "as_of": self.now.isoformat(),
            "attention": {k: m.as_dict() for k, m in self.models.items()},
            "cadence": self.cadence.as_dict(),
            "demand_model": self.demand.as_dict(),
            "lead_times_days": {"production": self.history.production_days,
                                "transfer": self.history.transfer_days},
            # Drops under half the typical drop's size count less in the attention fit.
            "down_weighted_drops": self.history.small_drops(),
            "signals_now": {"members_by_segment": self.history.members_now,
                            "members_by_tier": self.history.members_by_tier,
                            "waitlist_left_over": self.history.waitlist_now},
            "recommendations": [
                {**c.as_dict(), "cap": _cap_summary(caps[c.day])}
                for c in self.cadence.recommended],
            "scheduled": [{"slug": drop.slug, "starts_at": drop.starts_at.isoformat(),
                           "cap_now": cap_now, "cap": _cap_summary(plan)}
                          for drop, cap_now, plan in self.upcoming],
            "sustainability": [r.as_dict() for r in self.sustainability],
        }


def _cap_summary(plan: CapPlan) -> dict[str, Any]:
    data = plan.as_dict()
    data.pop("trade_off")
    return data


def _signals_for(history: ShopHistory, attention: float | None) -> DemandSignals:
    return DemandSignals(history.members_now, history.waitlist_now, attention)


def plan_drops(session: Session, *, clock: Clock, bootstrap: int = 30,
               target: float = DEFAULT_TARGET, horizon_days: int = 90,
               min_gap_days: int = 7) -> DropPlan:
    now = clock.now()
    history = load_history(session, now=now)
    if not history.outcomes:
        raise InvalidState("no drop has ended yet, so there is nothing to learn attention and "
                           "demand from; plan after the first drop (or try it on `dropline "
                           "demo`)")
    models = fit_models(history, bootstrap=bootstrap)
    brand = models[signals.ALL]
    demand = fit_demand(history.outcomes)
    attention = sum(o.attention for o in history.outcomes)
    units_per_touch = (sum(o.demand_units for o in history.outcomes) / attention
                       if attention else 0.0)
    scheduled = [d for d in history.drops if d.starts_at >= now]
    bounded = bounded_best_gap(history.series().counts, history.drop_indices(),
                               history.drop_weights())
    cadence = plan_cadence(brand, PlanningInputs(
        today=now.date(),
        past_drop_days=[d.starts_at.date() for d in history.drops if d.starts_at < now],
        scheduled=[(d.slug, d.starts_at.date()) for d in scheduled],
        factory_busy=history.factory_busy, production_days=history.production_days,
        transfer_days=history.transfer_days, min_gap_days=min_gap_days,
        horizon_days=horizon_days, units_per_touch=units_per_touch,
        demand_at=lambda touches: expected_units(demand, _signals_for(history, touches)),
        gap_band=(round(bounded[1] - STEP_DAYS), round(bounded[1] + STEP_DAYS))
        if bounded else None))
    lead = math.ceil(history.production_days) + math.ceil(history.transfer_days)
    last_variants = [v.variant_id for v in drops.drop_variants(session, history.drops[-1].id)] \
        if history.drops else []
    caps = [(c.day, size_cap(demand, _signals_for(history, c.expected_attention),
                             target=target, variant_ids=last_variants,
                             history=history.outcomes, drop_day=c.day, lead_days=lead))
            for c in cadence.recommended]
    upcoming = []
    every_day = sorted(d.starts_at.date() for d in history.drops)
    for drop in scheduled:
        before = [d for d in every_day if d < drop.starts_at.date()]
        gap = (drop.starts_at.date() - before[-1]).days if before else horizon_days
        variants = drops.drop_variants(session, drop.id)
        upcoming.append((drop, drops.cap_of(drop, variants), size_cap(
            demand, _signals_for(history, brand.expected_attention(gap)), target=target,
            variant_ids=[v.variant_id for v in variants],
            history=history.outcomes, drop_day=drop.starts_at.date(), lead_days=lead)))
    return DropPlan(now, models, cadence, demand, caps, upcoming,
                    sustainability_rows(history.facts), history)


def drop_facts(session: Session, *, now: datetime) -> list[DropFacts]:
    """The figures sustainability needs, in three aggregate queries (no touches): cheap
    enough for every post-drop report."""
    sold: dict[int, tuple[int, datetime | None]] = {
        drop_id: (int(units or 0), last) for drop_id, units, last in session.execute(
            select(DropHold.drop_id, func.sum(DropHold.quantity), func.max(Order.paid_at))
            .join(Order, Order.id == DropHold.order_id)
            .where(DropHold.status == HoldStatus.converted, Order.status.in_(signals.SOLD))
            .group_by(DropHold.drop_id))}
    restocked: dict[int, int] = defaultdict(int)
    for subject, payload in session.execute(
            select(DomainEvent.subject_id, DomainEvent.payload)
            .where(DomainEvent.type == "drop.restocked", DomainEvent.subject_type == "drop")):
        if subject.isdigit():
            restocked[int(subject)] += int((payload or {}).get("units") or 0)
    facts = []
    for drop in session.scalars(select(Drop).where(Drop.starts_at < now)
                                .order_by(Drop.starts_at)):
        cap = drops.cap_of(drop, drops.drop_variants(session, drop.id))
        units, last = sold.get(drop.id, (0, None))
        facts.append(DropFacts(
            drop.slug, drop.starts_at - timedelta(minutes=drop.early_access_minutes),
            drop.ends_at <= now, cap, units, restocked[drop.id],
            last if cap and units >= cap else None))
    return facts


def sustainability(session: Session, *, clock: Clock) -> list[SustainabilityRow]:
    return sustainability_rows(drop_facts(session, now=clock.now()))


def drop_sustainability(session: Session, *, clock: Clock, slug: str
                        ) -> SustainabilityRow | None:
    """One drop's row (with the running totals up to it), for the post-drop report."""
    return next((r for r in sustainability(session, clock=clock) if r.slug == slug), None)
