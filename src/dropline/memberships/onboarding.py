"""The 30-day onboarding flow: which steps each new member has reached, the notices they
trigger, and whether finishing the flow goes with staying a member."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.events.models import DomainEvent
from dropline.memberships import service
from dropline.memberships.models import Membership, OnboardingProgress
from dropline.memberships.rules import (
    ONBOARDING_DAYS,
    MembershipStatus,
    OnboardingStep,
    onboarding_due,
    retained,
    steps_from_config,
)
from dropline.memberships.settings_store import read_setting, write_setting

SETTING = "onboarding_steps"
FLOW_STATUSES = (MembershipStatus.trialing, MembershipStatus.active, MembershipStatus.past_due)


def get_steps(session: Session) -> tuple[OnboardingStep, ...]:
    return steps_from_config(read_setting(session, SETTING))


def set_steps(session: Session, *, clock: Clock, steps: list[dict[str, Any]]
              ) -> tuple[OnboardingStep, ...]:
    parsed = steps_from_config(steps) if steps else None
    if parsed is None:
        write_setting(session, clock=clock, key=SETTING, value=None)
        return get_steps(session)
    write_setting(session, clock=clock, key=SETTING, value=[asdict(s) for s in parsed])
    return parsed


def advance_all(session: Session, *, clock: Clock) -> int:
    """Marks due steps done (each once: unique per membership and step) and queues their
    notices. Returns how many steps were reached."""
    now = clock.now()
    steps = get_steps(session)
    members = session.scalars(select(Membership).where(
        Membership.status.in_(FLOW_STATUSES),
        Membership.started_at >= now - timedelta(days=ONBOARDING_DAYS + 2))).all()
    if not members:
        return 0
    ids = [m.id for m in members]
    done: dict[int, set[str]] = {}
    for membership_id, key in session.execute(select(
            OnboardingProgress.membership_id, OnboardingProgress.step_key)
            .where(OnboardingProgress.membership_id.in_(ids))):
        done.setdefault(membership_id, set()).add(key)
    event_types = [s.event for s in steps if s.event]
    firsts: dict[tuple[int, str], list[datetime]] = {}
    if event_types:
        for customer_id, type_, at in session.execute(
                select(DomainEvent.customer_id, DomainEvent.type, DomainEvent.occurred_at)
                .where(DomainEvent.type.in_(event_types),
                       DomainEvent.customer_id.in_([m.customer_id for m in members]))):
            firsts.setdefault((customer_id, type_), []).append(at)
    reached = 0
    for membership in members:
        first_events = {
            t: min(at for at in firsts.get((membership.customer_id, t), [])
                   if at >= membership.started_at)
            for t in event_types
            if any(at >= membership.started_at for at in firsts.get((membership.customer_id, t),
                                                                     []))}
        for step, due_at in onboarding_due(steps, joined_at=membership.started_at, now=now,
                                           done=done.get(membership.id, set()),
                                           first_events=first_events):
            session.add(OnboardingProgress(membership_id=membership.id, step_key=step.key,
                                           due_at=due_at, done_at=now))
            service.queue_notice(
                session, clock=clock, customer_id=membership.customer_id,
                membership_id=membership.id, kind=f"onboarding:{step.key}"[:40],
                dedupe_key=f"onboarding:{membership.id}:{step.key}", subject=step.subject,
                body=step.text)
            reached += 1
    session.flush()
    return reached


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
    return [StepProgress(s.key, s.subject, f"day {s.day}" if s.day is not None
                         else f"on {s.event}", rows.get(s.key)) for s in get_steps(session)]


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
