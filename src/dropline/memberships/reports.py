"""Membership figures: MRR, members per tier, churn (voluntary against failed payment), trial
conversion, and the cohort map (segment x join month)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipTier,
)
from dropline.memberships.rules import (
    LIVE_STATUSES,
    CohortCell,
    CohortMember,
    EndReason,
    MembershipStatus,
    cohort_map,
    monthly_equivalent,
)
from dropline.orders.models import Order, OrderStatus

PAYING = (MembershipStatus.active, MembershipStatus.past_due)


@dataclass(frozen=True)
class TierFigures:
    slug: str
    name: str
    live: int  # holding a spot: incomplete, trialing, active, past due or paused
    paying: int  # active or past due
    trialing: int
    paused: int
    mrr: int


@dataclass(frozen=True)
class Metrics:
    currency: str
    mrr: int  # monthly recurring revenue, minor units: annual tiers count a twelfth
    tiers: list[TierFigures]
    since: datetime
    until: datetime
    members_at_start: int
    churned_voluntary: int
    churned_failed_payment: int
    trials_ended: int
    trials_converted: int

    @property
    def churn_rate(self) -> float | None:
        churned = self.churned_voluntary + self.churned_failed_payment
        return round(churned / self.members_at_start, 4) if self.members_at_start else None

    @property
    def trial_conversion(self) -> float | None:
        return round(self.trials_converted / self.trials_ended, 4) if self.trials_ended else None


def metrics(session: Session, *, since: datetime, until: datetime) -> Metrics:
    tiers = session.scalars(select(MembershipTier).order_by(MembershipTier.price_amount)).all()
    counts: dict[tuple[int, MembershipStatus], int] = {
        (tier_id, status): n for tier_id, status, n in session.execute(
            select(Membership.tier_id, Membership.status, func.count())
            .where(Membership.status.in_(LIVE_STATUSES))
            .group_by(Membership.tier_id, Membership.status))}
    figures = []
    for tier in tiers:
        by = {s: counts.get((tier.id, s), 0) for s in LIVE_STATUSES}
        paying = sum(by[s] for s in PAYING)
        figures.append(TierFigures(
            tier.slug, tier.name, sum(by.values()), paying, by[MembershipStatus.trialing],
            by[MembershipStatus.paused],
            paying * monthly_equivalent(tier.price_amount, tier.interval)))
    started = Membership.status != MembershipStatus.failed
    at_start = session.scalar(select(func.count()).select_from(Membership).where(
        started, Membership.started_at < since,
        (Membership.ended_at.is_(None)) | (Membership.ended_at >= since))) or 0
    churn = dict(session.execute(
        select(Membership.end_reason, func.count()).where(
            started, Membership.ended_at >= since, Membership.ended_at < until)
        .group_by(Membership.end_reason)).all())
    trials = session.execute(
        select(Membership.id).where(Membership.trial_end.is_not(None),
                                    Membership.trial_end >= since,
                                    Membership.trial_end < until)).scalars().all()
    converted = session.scalar(
        select(func.count(func.distinct(MembershipCharge.membership_id))).where(
            MembershipCharge.membership_id.in_(trials),
            MembershipCharge.kind == ChargeKind.renewal,
            MembershipCharge.status == ChargeStatus.succeeded)) or 0 if trials else 0
    return Metrics(
        currency=tiers[0].currency if tiers else "GBP",
        mrr=sum(f.mrr for f in figures), tiers=figures, since=since, until=until,
        members_at_start=at_start,
        churned_voluntary=churn.get(EndReason.voluntary, 0),
        churned_failed_payment=churn.get(EndReason.failed_payment, 0),
        trials_ended=len(trials), trials_converted=converted)


def membership_cohort_map(session: Session, *, now: datetime) -> list[CohortCell]:
    """Per segment and join month: members, still active, revenue (membership charges plus
    their paid orders since joining, less refunds) and retention after 1, 3 and 6 months."""
    members = session.execute(
        select(Membership.id, Membership.customer_id, Membership.segment, Membership.started_at,
               Membership.ended_at)
        .where(Membership.status != MembershipStatus.failed)).all()
    charges = dict(session.execute(
        select(MembershipCharge.membership_id, func.sum(MembershipCharge.amount))
        .where(MembershipCharge.status == ChargeStatus.succeeded)
        .group_by(MembershipCharge.membership_id)).all())
    orders: dict[int, list[tuple[datetime, int]]] = {}
    for customer_id, at, total, refunded in session.execute(
            select(Order.customer_id, Order.created_at, Order.total_amount,
                   Order.refunded_amount)
            .where(Order.status.in_((OrderStatus.paid, OrderStatus.partially_refunded)),
                   Order.customer_id.in_({m.customer_id for m in members}))):
        orders.setdefault(customer_id, []).append((at, total - refunded))
    return cohort_map((
        CohortMember(
            segment=m.segment or "unclassified", joined_at=m.started_at, ended_at=m.ended_at,
            revenue=int(charges.get(m.id) or 0) + sum(
                amount for at, amount in orders.get(m.customer_id, ())
                if at >= m.started_at and (m.ended_at is None or at < m.ended_at)))
        for m in members), now=now)
