"""Membership background work. Every job is idempotent and safe on several workers at once:
each change it makes is one conditional UPDATE (or an insert guarded by a unique constraint),
so a second run, or a second worker, finds nothing left to do.

    renew_due            ends memberships cancelled at period end, opens renewal charges for
                         periods that have ended, and runs every due attempt (dunning included)
    lapse_overdue        ends past-due memberships whose grace period is over
    resume_due           resumes paused memberships whose resume date has come
    advance_onboarding   marks each new member's onboarding steps done as they fall due
    recompute_segments   reclassifies every member (at most once a day unless forced)

The notices these write (receipts, dunning) go on the one mail outbox
(``service.queue_notice``), which its own job sends after commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.memberships import flows, service
from dropline.memberships.config import MembershipConfig, membership_config
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
)
from dropline.memberships.onboarding import advance_all
from dropline.memberships.rules import EndReason, MembershipStatus
from dropline.memberships.segments import DropDays, claim_segment_run, classify_all
from dropline.payments.provider import RecurringPaymentProvider

SEGMENT_INTERVAL = timedelta(hours=24)


@dataclass
class RenewalReport:
    ended: int = 0
    opened: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def renew_due(db: Database, *, clock: Clock, config: MembershipConfig,
              provider: RecurringPaymentProvider, limit: int = 500,
              failpoint: str | None = None) -> RenewalReport:
    report = RenewalReport()
    now = clock.now()
    with db.transaction() as session:
        ids = session.scalars(
            select(Membership.id)
            .where(Membership.status.in_((MembershipStatus.active, MembershipStatus.trialing)),
                   Membership.current_period_end <= now)
            .order_by(Membership.current_period_end, Membership.id).limit(limit)).all()
    for membership_id in ids:
        try:
            with db.transaction() as session:
                membership = service.get_membership(session, membership_id)
                if membership.status not in (MembershipStatus.active, MembershipStatus.trialing):
                    continue
                # Re-check under this transaction: another worker may have renewed it since
                # the list was read, and the next period is not due yet.
                if membership.current_period_end > now:
                    continue
                if membership.cancel_at_period_end:
                    report.ended += service.end_membership(
                        session, clock=clock, membership=membership,
                        status=MembershipStatus.canceled, reason=EndReason.voluntary,
                        from_statuses=(MembershipStatus.active, MembershipStatus.trialing))
                    continue
                charge = service.open_renewal(session, clock=clock, membership=membership)
                if charge is not None:
                    report.opened += 1
                    if charge.status is ChargeStatus.succeeded:  # covered by credit
                        flows.on_paid(session, clock=clock, config=config, charge=charge,
                                       membership=membership)
        except IntegrityError:
            # Another worker opened the same period's charge first: theirs stands.
            continue
    with db.transaction() as session:
        due = session.scalars(
            select(MembershipCharge.id)
            .where(MembershipCharge.kind == ChargeKind.renewal,
                   MembershipCharge.status == ChargeStatus.pending,
                   or_(MembershipCharge.attempt_open.is_(False)
                       & (MembershipCharge.next_attempt_at <= now),
                       MembershipCharge.attempt_open.is_(True)
                       & (MembershipCharge.lease_until <= now)))
            .order_by(MembershipCharge.next_attempt_at, MembershipCharge.id).limit(limit)).all()
    for charge_id in due:
        report.count(flows.attempt_charge(db, clock=clock, config=config, provider=provider,
                                          charge_id=charge_id, failpoint=failpoint))
    return report


def lapse_overdue(db: Database, *, clock: Clock) -> int:
    now = clock.now()
    with db.transaction() as session:
        ids = session.scalars(select(Membership.id).where(
            Membership.status == MembershipStatus.past_due, Membership.grace_until <= now)).all()
    lapsed = 0
    for membership_id in ids:
        with db.transaction() as session:
            membership = service.get_membership(session, membership_id)
            if service.end_membership(session, clock=clock, membership=membership,
                                      status=MembershipStatus.lapsed,
                                      reason=EndReason.failed_payment,
                                      from_statuses=(MembershipStatus.past_due,)):
                lapsed += 1
                tier = service.get_tier(session, membership.tier_id)
                service.queue_notice(
                    session, clock=clock, customer_id=membership.customer_id,
                    membership_id=membership.id, kind="lapsed",
                    dedupe_key=f"lapsed:{membership.id}",
                    subject=f"Your {tier.name} membership has lapsed",
                    body="We could not take your renewal payment, so your membership has "
                         "lapsed and its perks have stopped. You are welcome back any time "
                         "at /membership.")
    return lapsed


def resume_due(db: Database, *, clock: Clock) -> int:
    now = clock.now()
    with db.transaction() as session:
        ids = session.scalars(select(Membership.id).where(
            Membership.status == MembershipStatus.paused, Membership.resume_at <= now)).all()
    resumed = 0
    for membership_id in ids:
        with db.transaction() as session:
            membership = service.get_membership(session, membership_id)
            if membership.status is MembershipStatus.paused:
                service.resume_membership(session, clock=clock, membership=membership)
                resumed += 1
    return resumed


def advance_onboarding(db: Database, *, clock: Clock) -> int:
    with db.transaction() as session:
        return advance_all(session, clock=clock)


def recompute_segments(db: Database, *, clock: Clock, drop_days: DropDays,
                       force: bool = False) -> int | None:
    """Reclassifies every member; None if it ran within the last day (unless ``force``).
    Workers take turns through a conditional UPDATE of the last-run stamp."""
    with db.transaction() as session:
        if not claim_segment_run(session, clock=clock, every=SEGMENT_INTERVAL, force=force):
            return None
        return classify_all(session, clock=clock, drop_days=drop_days)


@dataclass
class MembershipJobs:
    """The pass the background worker runs (``web.scheduler.BackgroundWorker.run_once``), with
    the process's payment provider (``Services.payments``)."""

    db: Database
    clock: Clock
    settings: Settings
    provider: RecurringPaymentProvider
    drop_days: DropDays  # drops.service.started_drop_days in the shop

    def run_once(self) -> RenewalReport:
        config = membership_config(self.settings)
        resume_due(self.db, clock=self.clock)
        report = renew_due(self.db, clock=self.clock, config=config, provider=self.provider,
                           failpoint=self.settings.testing.failpoint)
        lapse_overdue(self.db, clock=self.clock)
        advance_onboarding(self.db, clock=self.clock)
        recompute_segments(self.db, clock=self.clock, drop_days=self.drop_days)
        return report


def run_membership_jobs(db: Database, *, clock: Clock, settings: Settings,
                        provider: RecurringPaymentProvider,
                        drop_days: DropDays) -> RenewalReport:
    return MembershipJobs(db, clock, settings, provider, drop_days).run_once()
