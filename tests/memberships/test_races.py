"""Concurrency with real threads and one connection each: on PostgreSQL the transactions
interleave for real; on SQLite the engine serialises writers and the invariants still hold.

A renewal is charged once however many workers run the job at once; a capped tier never has
more members than spots; a member votes once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.errors import DomainError
from dropline.memberships import jobs, polls
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipTier,
    PollVote,
)
from dropline.memberships.rules import MembershipStatus
from dropline.payments.models import LocalProviderCharge
from tests.memberships.support import CONFIG, ScriptedProvider, join, make_customer, make_tier
from tests.orders.test_races import race


def test_two_workers_renewing_at_once_charge_each_membership_once(db, clock):
    tier = make_tier(db, clock, price=1000)
    provider = LocalCardProvider(db.sessions, clock)
    members = [join(db, clock, provider, customer_id=make_customer(db, clock), tier_id=tier)
               for _ in range(6)]
    clock.advance(days=31)

    reports = race(2, lambda _: jobs.renew_due(db, clock=clock, config=CONFIG,
                                               provider=provider))

    assert all(isinstance(r, jobs.RenewalReport) for r in reports), reports
    assert sum(r.outcomes.get("succeeded", 0) for r in reports) == 6
    with db.transaction() as session:
        renewals = session.scalars(select(MembershipCharge).where(
            MembershipCharge.kind == ChargeKind.renewal)).all()
        assert sorted(c.membership_id for c in renewals) == sorted(members)
        assert all((c.status, c.attempts) == (ChargeStatus.succeeded, 1) for c in renewals)
        # The provider's own ledger: 6 sign-ups and 6 renewals, nothing more.
        assert session.scalar(select(func.count()).select_from(LocalProviderCharge).where(
            LocalProviderCharge.kind == "charge")) == 12
        assert set(session.scalars(select(Membership.period_index))) == {1}


def test_many_workers_on_one_due_retry_send_one_attempt(db, clock):
    tier = make_tier(db, clock, price=1000)
    provider = ScriptedProvider()
    member = join(db, clock, provider, customer_id=make_customer(db, clock), tier_id=tier)
    provider.then(["insufficient_funds", "ok"])
    clock.advance(days=31)
    jobs.renew_due(db, clock=clock, config=CONFIG, provider=provider)  # first attempt declines
    clock.advance(hours=12)

    race(4, lambda _: jobs.renew_due(db, clock=clock, config=CONFIG, provider=provider))

    assert provider.calls == 3  # sign-up, the declined attempt, one retry
    assert [amount for _, amount in provider.taken] == [1000, 1000]
    with db.transaction() as session:
        charge = session.scalar(select(MembershipCharge).where(
            MembershipCharge.kind == ChargeKind.renewal))
        assert (charge.status, charge.attempts) == (ChargeStatus.succeeded, 2)
        assert session.get(Membership, member).status is MembershipStatus.active


def test_a_crowd_joining_a_capped_tier_never_exceeds_its_spots(db, clock):
    tier = make_tier(db, clock, cap=3)
    provider = ScriptedProvider()
    customers = [make_customer(db, clock) for _ in range(10)]

    results = race(10, lambda i: join(db, clock, provider, customer_id=customers[i],
                                      tier_id=tier))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"int": 3, "OutOfStock": 7}, results
    with db.transaction() as session:
        assert session.get(MembershipTier, tier).live_count == 3
        assert session.scalar(select(func.count()).select_from(Membership)) == 3
    assert len(provider.taken) == 3


def test_a_member_voting_from_two_tabs_at_once_votes_once(db, clock):
    tier = make_tier(db, clock)
    customer = make_customer(db, clock)
    join(db, clock, ScriptedProvider(), customer_id=customer, tier_id=tier)
    with db.transaction() as session:
        poll = polls.create_poll(session, clock=clock, question="Next scent?",
                                 options=["Vetiver", "Yuzu"], tier_id=tier, segment=None,
                                 closes_at=clock.now() + timedelta(days=7))
        poll_id = poll.id

    def vote(i: int) -> object:
        with db.transaction() as session:
            return polls.vote(session, clock=clock, poll_id=poll_id, customer_id=customer,
                              option_index=i % 2).option_index

    results = race(6, vote)

    assert sum(isinstance(r, int) for r in results) == 1, results
    assert all(isinstance(r, (int, DomainError)) for r in results), results
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PollVote)) == 1
