"""The 30-day onboarding flows: which flow each new member gets (or that they are held out of
it, at random, as the control group), which steps they have reached, the notices those send,
and the flow's measured effect on retention against its holdout (``onboarding_rules``).

Flows live in ``membership_settings`` under ``onboarding_flows`` (edited through the CLI, the
API and the console); a shop that never set any runs the built-in default flow with no
holdout. The older single list of steps (``onboarding_steps``) is read as the default flow's
steps."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.events.models import DomainEvent
from dropline.memberships import service
from dropline.memberships.models import (
    Membership,
    MembershipTier,
    OnboardingAssignment,
    OnboardingProgress,
)
from dropline.memberships.onboarding_rules import (
    DEFAULT_FLOW,
    Effect,
    OnboardingFlow,
    choose_flow,
    flows_as_config,
    flows_from_config,
    held_out,
    retention_effect,
)
from dropline.memberships.rules import (
    ONBOARDING_DAYS,
    MembershipStatus,
    OnboardingStep,
    onboarding_due,
    onboarding_nudges,
    retained,
    steps_from_config,
)
from dropline.memberships.settings_store import read_setting, write_setting

SETTING = "onboarding_steps"
FLOWS_SETTING = "onboarding_flows"
FLOW_STATUSES = (MembershipStatus.trialing, MembershipStatus.active, MembershipStatus.past_due)
RETENTION_DAYS = (30, 60, 90)


def get_steps(session: Session) -> tuple[OnboardingStep, ...]:
    """The default flow's steps (the flow for every member no other flow matches)."""
    return next((f.steps for f in get_flows(session)
                 if f.tier is None and f.segment is None), get_default_steps(session))


def get_default_steps(session: Session) -> tuple[OnboardingStep, ...]:
    return steps_from_config(read_setting(session, SETTING))


def get_flows(session: Session) -> tuple[OnboardingFlow, ...]:
    stored = read_setting(session, FLOWS_SETTING)
    if stored:
        return flows_from_config(stored)
    return (OnboardingFlow(DEFAULT_FLOW.name, get_default_steps(session)),)


def set_flows(session: Session, *, clock: Clock, flows: Any) -> tuple[OnboardingFlow, ...]:
    """Replaces the shop's flows (validated whole: a bad flow changes nothing). Members already
    assigned keep their flow (by name) or holdout; an empty list restores the default."""
    parsed = flows_from_config(flows) if flows else None
    write_setting(session, clock=clock, key=FLOWS_SETTING,
                  value=flows_as_config(parsed) if parsed else None)
    return get_flows(session)


def advance_all(session: Session, *, clock: Clock, draw: Callable[[], float] = random.random
                ) -> int:
    """Assigns each new member a flow or the holdout (``draw``: the random source, uniform on
    [0, 1)), marks due steps done (each once: unique per membership and step) and queues their
    notices and nudges. Held-out members get nothing. Returns how many steps were reached."""
    now = clock.now()
    members = session.scalars(select(Membership).where(
        Membership.status.in_(FLOW_STATUSES),
        Membership.started_at >= now - timedelta(days=ONBOARDING_DAYS + 2))
        .order_by(Membership.id)).all()  # new members draw in joining order
    if not members:
        return 0
    flows = {f.name: f for f in get_flows(session)}
    assigned = _assign(session, clock=clock, members=members, flows=flows, draw=draw)
    ids = [m.id for m in members]
    done: dict[int, set[str]] = {}
    for membership_id, key in session.execute(select(
            OnboardingProgress.membership_id, OnboardingProgress.step_key)
            .where(OnboardingProgress.membership_id.in_(ids))):
        done.setdefault(membership_id, set()).add(key)
    event_types = sorted({e for f in flows.values() for s in f.steps
                          for e in (s.event, s.completes_on) if e})
    firsts: dict[tuple[int, str], list[datetime]] = {}
    if event_types:
        for customer_id, type_, at in session.execute(
                select(DomainEvent.customer_id, DomainEvent.type, DomainEvent.occurred_at)
                .where(DomainEvent.type.in_(event_types),
                       DomainEvent.customer_id.in_([m.customer_id for m in members]))):
            firsts.setdefault((customer_id, type_), []).append(at)
    reached = 0
    for membership in members:
        assignment = assigned[membership.id]
        if assignment.held_out:
            continue
        steps = flows.get(assignment.flow, DEFAULT_FLOW).steps
        first_events = {
            t: min(at for at in firsts.get((membership.customer_id, t), [])
                   if at >= membership.started_at)
            for t in event_types
            if any(at >= membership.started_at for at in firsts.get((membership.customer_id, t),
                                                                     []))}
        finished = done.get(membership.id, set())
        for step, due_at in onboarding_due(steps, joined_at=membership.started_at, now=now,
                                           done=finished, first_events=first_events):
            session.add(OnboardingProgress(membership_id=membership.id, step_key=step.key,
                                           due_at=due_at, done_at=now))
            finished = finished | {step.key}
            reached += 1
            if step.completes_on is None:  # an action's step is done by the action itself
                _notify(session, clock=clock, membership=membership, step=step,
                        key=f"onboarding:{membership.id}:{step.key}")
        for step in onboarding_nudges(steps, joined_at=membership.started_at, now=now,
                                      done=finished):
            _notify(session, clock=clock, membership=membership, step=step,
                    key=f"onboarding-nudge:{membership.id}:{step.key}")
    session.flush()
    return reached


def _notify(session: Session, *, clock: Clock, membership: Membership, step: OnboardingStep,
            key: str) -> None:
    if step.channel != "email":
        return  # "account": shown on the member's page from the progress rows, no mail
    service.queue_notice(
        session, clock=clock, customer_id=membership.customer_id,
        membership_id=membership.id, kind=f"onboarding:{step.key}"[:40],
        dedupe_key=key, subject=step.subject, body=step.text)


def _assign(session: Session, *, clock: Clock, members: Sequence[Membership],
            flows: dict[str, OnboardingFlow], draw: Callable[[], float]
            ) -> dict[int, OnboardingAssignment]:
    """Each member's assignment, drawn now for those who have none (once: the row's key is the
    membership)."""
    ids = [m.id for m in members]
    known = {a.membership_id: a for a in session.scalars(
        select(OnboardingAssignment).where(OnboardingAssignment.membership_id.in_(ids)))}
    tiers = dict(session.execute(select(MembershipTier.id, MembershipTier.slug)).all())
    for membership in members:
        if membership.id in known:
            continue
        flow = choose_flow(list(flows.values()), tier=tiers.get(membership.tier_id),
                           segment=membership.segment)
        row = OnboardingAssignment(membership_id=membership.id, flow=flow.name,
                                   held_out=held_out(draw(), flow.holdout_share),
                                   assigned_at=clock.now())
        session.add(row)
        known[membership.id] = row
    session.flush()
    return known


@dataclass(frozen=True)
class StepProgress:
    key: str
    subject: str
    when: str  # "day 2" or "on drop.early_access_used"
    done_at: datetime | None


def progress(session: Session, *, membership: Membership) -> list[StepProgress]:
    rows = dict(session.execute(select(OnboardingProgress.step_key, OnboardingProgress.done_at)
                                .where(OnboardingProgress.membership_id == membership.id)).all()
                )
    assignment = session.get(OnboardingAssignment, membership.id)
    if assignment is not None and assignment.held_out:
        return []
    flows = {f.name: f for f in get_flows(session)}
    steps = flows[assignment.flow].steps if assignment is not None and \
        assignment.flow in flows else get_steps(session)
    return [StepProgress(s.key, s.subject, _when(s), rows.get(s.key)) for s in steps]


def _when(step: OnboardingStep) -> str:
    if step.completes_on:
        return f"on {step.completes_on} (nudged on day {step.day})"
    return f"day {step.day}" if step.day is not None else f"on {step.event}"


def retention_by_completion(session: Session, *, clock: Clock) -> dict[str, dict[str, Any]]:
    """Retention at 30/60/90 days of members who completed every onboarding step against
    those who did not (members who joined at least 30 days ago, and did not fail to start)."""
    now = clock.now()
    steps = {s.key for s in get_steps(session)}
    members = session.execute(select(Membership.id, Membership.started_at, Membership.ended_at)
                              .where(Membership.status != MembershipStatus.failed,
                                     Membership.started_at <= now - timedelta(days=30))).all()
    counts = dict(session.execute(
        select(OnboardingProgress.membership_id, func.count())
        .where(OnboardingProgress.step_key.in_(steps))
        .group_by(OnboardingProgress.membership_id)).all())
    groups: dict[str, dict[str, Any]] = {
        name: {"members": 0, **{f"retained_{d}d": None for d in (30, 60, 90)}}
        for name in ("completed", "not_completed")}
    flags: dict[tuple[str, int], list[bool]] = {}
    for membership_id, started_at, ended_at in members:
        group = "completed" if counts.get(membership_id, 0) >= len(steps) else "not_completed"
        groups[group]["members"] += 1
        for days in (30, 60, 90):
            kept = retained(started_at=started_at, ended_at=ended_at, now=now, days=days)
            if kept is not None:
                flags.setdefault((group, days), []).append(kept)
    for (group, days), values in flags.items():
        groups[group][f"retained_{days}d"] = round(sum(values) / len(values), 3)
    return groups


@dataclass(frozen=True)
class FlowEffect:
    flow: str
    in_flow: int
    held_out: int
    retention: dict[int, Effect]  # days -> the flow's effect on still being a member

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "in_flow": self.in_flow, "held_out": self.held_out,
                "retention": {f"{d}d": e.as_dict() for d, e in self.retention.items()}}


def onboarding_effect(session: Session, *, clock: Clock) -> list[FlowEffect]:
    """Per flow, and for all flows together ("all", where there are several): retention at 30/60/90 days of members who
    got the flow minus those held out of it, with 90 % intervals. Members count once their
    N days have passed; those whose first payment failed never started and do not count."""
    now = clock.now()
    rows = session.execute(
        select(OnboardingAssignment.flow, OnboardingAssignment.held_out, Membership.started_at,
               Membership.ended_at)
        .join(Membership, Membership.id == OnboardingAssignment.membership_id)
        .where(Membership.status != MembershipStatus.failed)).all()
    by_flow: dict[str, list[tuple[bool, datetime, datetime | None]]] = {}
    for flow, out, started, ended in rows:
        by_flow.setdefault(flow, []).append((out, started, ended))
    if len(by_flow) > 1:
        by_flow["all"] = [member for members in list(by_flow.values()) for member in members]
    effects = []
    for flow in sorted(by_flow, key=lambda name: (name == "all", name)):
        members = by_flow[flow]
        retention = {}
        for days in RETENTION_DAYS:
            kept: dict[bool, list[bool]] = {False: [], True: []}
            for out, started, ended in members:
                flag = retained(started_at=started, ended_at=ended, now=now, days=days)
                if flag is not None:
                    kept[out].append(flag)
            retention[days] = retention_effect(kept[False], kept[True])
        effects.append(FlowEffect(flow, sum(1 for m in members if not m[0]),
                                  sum(1 for m in members if m[0]), retention))
    return effects
