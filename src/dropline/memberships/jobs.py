"""Membership background work. Every job is idempotent and safe on several workers at once:
each change it makes is one conditional UPDATE (or an insert guarded by a unique constraint),
so a second run, or a second worker, finds nothing left to do.

    renew_due            ends memberships cancelled at period end, opens renewal charges for
                         periods that have ended, and runs every due attempt (dunning included)
    lapse_overdue        ends past-due memberships whose grace period is over
    resume_due           resumes paused memberships whose resume date has come
    advance_onboarding   marks each new member's onboarding steps done as they fall due
    recompute_segments   reclassifies every member (at most once a day unless forced)
    send_notices         emails the notice outbox (after commit, at least once)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from dropline.adapters.email import EmailSender, OutgoingEmail, sender_for
from dropline.adapters.payments import LocalCardProvider, RecurringPaymentProvider
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
    MembershipNotice,
)
from dropline.memberships.rules import EndReason, MembershipStatus

log = logging.getLogger("dropline.memberships")
NOTICE_LEASE_SECONDS = 60
SEGMENT_INTERVAL = timedelta(hours=24)


@dataclass
class RenewalReport:
    ended: int = 0
    opened: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def renew_due(db: Database, *, clock: Clock, config: MembershipConfig,
              provider: RecurringPaymentProvider, limit: int = 500) -> RenewalReport:
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
                                          charge_id=charge_id))
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


def send_notices(db: Database, *, clock: Clock, sender: EmailSender, limit: int = 200) -> int:
    """At least once: a notice is claimed (lease), sent, then marked sent. A crash between the
    send and the mark resends it after the lease with the same Message-ID."""
    now = clock.now()
    with db.transaction() as session:
        rows = session.execute(
            select(MembershipNotice.id).where(
                MembershipNotice.sent_at.is_(None),
                or_(MembershipNotice.claimed_until.is_(None),
                    MembershipNotice.claimed_until <= now))
            .order_by(MembershipNotice.id).limit(limit)).scalars().all()
    sent = 0
    for notice_id in rows:
        with db.transaction() as session:
            claimed = session.execute(
                update(MembershipNotice).where(
                    MembershipNotice.id == notice_id, MembershipNotice.sent_at.is_(None),
                    or_(MembershipNotice.claimed_until.is_(None),
                        MembershipNotice.claimed_until <= now))
                .values(claimed_until=now + timedelta(seconds=NOTICE_LEASE_SECONDS))).rowcount
            if claimed != 1:
                continue
            notice = session.get(MembershipNotice, notice_id)
            assert notice is not None
            to = service.customers_emails(session, [notice.customer_id]).get(notice.customer_id)
            message = OutgoingEmail(to=to or "", subject=notice.subject, text=notice.body,
                                    message_id=f"notice-{notice.id}-{notice.dedupe_key}")
        try:
            sender.send(message)
        except Exception:  # the lease runs out and another pass retries it
            log.exception("could not send notice %s", notice_id)
            continue
        with db.transaction() as session:
            session.execute(update(MembershipNotice).where(MembershipNotice.id == notice_id)
                            .values(sent_at=clock.now()))
        sent += 1
    return sent


def advance_onboarding(db: Database, *, clock: Clock) -> int:
    from dropline.memberships.onboarding import advance_all

    with db.transaction() as session:
        return advance_all(session, clock=clock)


def recompute_segments(db: Database, *, clock: Clock, force: bool = False) -> int | None:
    """Reclassifies every member; None if it ran within the last day (unless ``force``).
    Workers take turns through a conditional UPDATE of the last-run stamp."""
    from dropline.memberships.segments import claim_segment_run, classify_all

    with db.transaction() as session:
        if not claim_segment_run(session, clock=clock, every=SEGMENT_INTERVAL, force=force):
            return None
        return classify_all(session, clock=clock)


@dataclass
class MembershipJobs:
    """The pass the background worker runs (``web.scheduler.BackgroundWorker.run_once``)."""

    db: Database
    clock: Clock
    settings: Settings
    provider: RecurringPaymentProvider | None = None
    sender: EmailSender | None = None

    def run_once(self) -> RenewalReport:
        config = membership_config(self.settings)
        provider = self.provider or LocalCardProvider(self.db.sessions, self.clock)
        resume_due(self.db, clock=self.clock)
        report = renew_due(self.db, clock=self.clock, config=config, provider=provider)
        lapse_overdue(self.db, clock=self.clock)
        advance_onboarding(self.db, clock=self.clock)
        recompute_segments(self.db, clock=self.clock)
        send_notices(self.db, clock=self.clock,
                     sender=self.sender or sender_for(self.settings.mail))
        return report


def run_membership_jobs(db: Database, *, clock: Clock, settings: Settings) -> RenewalReport:
    return MembershipJobs(db, clock, settings).run_once()
