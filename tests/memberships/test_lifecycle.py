"""The membership lifecycle on a real database with a frozen clock: sign-up, a year of
renewals, dunning and lapse, recovery, pause and resume, cancel at period end, prorated tier
changes, caps with a waitlist, trials and the utility tier's consumables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
from sqlalchemy import func, select

from dropline.adapters.email import FolderSender
from dropline.adapters.payments import LocalCardProvider
from dropline.errors import AlreadyExists, OutOfStock, PaymentDeclined
from dropline.locations.models import StockLevel
from dropline.memberships import flows, jobs, perks, service
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipTier,
)
from dropline.memberships.rules import EndReason, MembershipStatus, OutOfStockPolicy, add_months
from dropline.notifications.jobs import send_mail_outbox
from dropline.notifications.models import MailOutboxItem
from dropline.orders.models import Order, OrderLine
from tests.builders import make_location, make_product
from tests.memberships.support import (
    CONFIG,
    DECLINED,
    GOOD,
    NO_FUNDS,
    ScriptedProvider,
    join,
    make_customer,
    make_tier,
)


def renew(db, clock, provider):
    return jobs.renew_due(db, clock=clock, config=CONFIG, provider=provider)


def membership(db, membership_id) -> Membership:
    with db.transaction() as session:
        return session.get(Membership, membership_id)


def charges(db, membership_id) -> list[MembershipCharge]:
    with db.transaction() as session:
        return list(session.scalars(select(MembershipCharge).where(
            MembershipCharge.membership_id == membership_id).order_by(MembershipCharge.id)))


def notices(db, membership_id=None) -> list[str]:
    """The kinds of the membership notices on the mail outbox, oldest first."""
    with db.transaction() as session:
        payloads = session.scalars(select(MailOutboxItem.payload).where(
            MailOutboxItem.template == "membership_notice").order_by(MailOutboxItem.id))
        return [p["kind"] for p in payloads
                if membership_id is None or p["membership_id"] == membership_id]


def live_count(db, tier_id) -> int:
    with db.transaction() as session:
        return session.get(MembershipTier, tier_id).live_count


# ----------------------------------------------------------------------- sign-up, renewals


def test_joining_charges_the_first_month_and_starts_the_membership(db, clock):
    tier = make_tier(db, clock, price=1200)
    customer = make_customer(db, clock)
    provider = LocalCardProvider(db.sessions, clock)

    member_id = join(db, clock, provider, customer_id=customer, tier_id=tier)

    m = membership(db, member_id)
    assert m.status is MembershipStatus.active
    assert (m.current_period_start, m.current_period_end) == (
        clock.now(), datetime(2026, 4, 2, 10, 0, tzinfo=UTC))
    [charge] = charges(db, member_id)
    assert (charge.kind, charge.status, charge.amount) == (ChargeKind.signup,
                                                           ChargeStatus.succeeded, 1200)
    assert charge.idempotency_key == f"mship-{member_id}-signup-20260302T100000"
    assert live_count(db, tier) == 1


def test_a_declined_first_payment_leaves_no_membership_and_frees_the_spot(db, clock):
    tier = make_tier(db, clock, cap=1)
    customer = make_customer(db, clock)
    provider = LocalCardProvider(db.sessions, clock)

    with pytest.raises(PaymentDeclined):
        join(db, clock, provider, customer_id=customer, tier_id=tier, card=DECLINED)

    with db.transaction() as session:
        m = session.scalar(select(Membership))
        assert m.status is MembershipStatus.failed and m.live_customer_id is None
    assert live_count(db, tier) == 0
    assert perks.active_tier is not None
    # The customer may try again with another card.
    assert membership(db, join(db, clock, provider, customer_id=customer,
                               tier_id=tier)).status is MembershipStatus.active


def test_a_year_of_monthly_renewals_charges_each_month_once_on_its_day(db, clock):
    clock.current = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)  # a month-end anchor
    tier = make_tier(db, clock, price=1000)
    provider = ScriptedProvider()
    member_id = join(db, clock, provider, customer_id=make_customer(db, clock), tier_id=tier)
    start = clock.now()

    for month in range(1, 13):
        clock.current = add_months(start, month)
        renew(db, clock, provider)
        renew(db, clock, provider)  # a second pass (or worker) finds nothing to do
        clock.advance(hours=1)
        renew(db, clock, provider)

    paid = charges(db, member_id)
    assert [c.status for c in paid] == [ChargeStatus.succeeded] * 13
    assert [c.period_start.date().isoformat() for c in paid[1:4]] == [
        "2026-02-28", "2026-03-31", "2026-04-30"]  # clamped, never drifting
    assert (paid[-1].period_start, paid[-1].period_end) == (
        datetime(2027, 1, 31, 9, 0, tzinfo=UTC), datetime(2027, 2, 28, 9, 0, tzinfo=UTC))
    assert len(provider.taken) == 13 and sum(a for _, a in provider.taken) == 13_000
    assert len({key for key, _ in provider.taken}) == 13
    m = membership(db, member_id)
    assert m.status is MembershipStatus.active and m.period_index == 12
    assert m.current_period_end == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert notices(db, member_id).count("receipt") == 13


def test_a_trial_charges_nothing_until_it_ends_and_is_given_once(db, clock):
    tier = make_tier(db, clock, price=1500, trial_days=14)
    customer = make_customer(db, clock)
    provider = ScriptedProvider()

    member_id = join(db, clock, provider, customer_id=customer, tier_id=tier)
    assert membership(db, member_id).status is MembershipStatus.trialing
    assert provider.calls == 0

    clock.advance(days=14)
    renew(db, clock, provider)

    m = membership(db, member_id)
    assert m.status is MembershipStatus.active
    assert (m.current_period_start, m.current_period_end) == (
        datetime(2026, 3, 16, 10, tzinfo=UTC), datetime(2026, 4, 16, 10, tzinfo=UTC))
    assert provider.taken == [(f"mship-{member_id}-renewal-20260316T100000:1", 1500)]

    with db.transaction() as session:
        service.cancel(session, clock=clock, customer_id=customer)
    clock.current = m.current_period_end
    renew(db, clock, provider)
    again = join(db, clock, provider, customer_id=customer, tier_id=tier)
    assert membership(db, again).status is MembershipStatus.active  # no second trial


# ------------------------------------------------------------------------------- dunning


def test_dunning_retries_four_times_twelve_hours_apart_then_lapses_after_grace(db, clock):
    tier = make_tier(db, clock, price=1000, early_access_minutes=60)
    customer = make_customer(db, clock)
    provider = ScriptedProvider()
    member_id = join(db, clock, provider, customer_id=customer, tier_id=tier)
    provider.then(["insufficient_funds"] * 5)
    period_end = membership(db, member_id).current_period_end

    attempts_at = []
    for hours in range(60):
        clock.current = period_end + timedelta(hours=hours)
        before = provider.calls
        renew(db, clock, provider)
        if provider.calls > before:
            attempts_at.append(hours)

    assert attempts_at == [0, 12, 24, 36, 48]
    [_, renewal] = charges(db, member_id)
    assert (renewal.status, renewal.attempts, renewal.decline_code) == (
        ChargeStatus.failed, 5, "insufficient_funds")
    m = membership(db, member_id)
    assert m.status is MembershipStatus.past_due
    assert m.grace_until == period_end + timedelta(hours=96)
    with db.transaction() as session:  # perks last through the grace period
        assert perks.early_access_minutes(session, customer_id=customer, at=clock.now()) == 60

    clock.current = period_end + timedelta(hours=96) - timedelta(seconds=1)
    assert jobs.lapse_overdue(db, clock=clock) == 0
    clock.advance(seconds=1)
    assert jobs.lapse_overdue(db, clock=clock) == 1
    assert jobs.lapse_overdue(db, clock=clock) == 0

    m = membership(db, member_id)
    assert (m.status, m.end_reason, m.live_customer_id) == (
        MembershipStatus.lapsed, EndReason.failed_payment, None)
    assert live_count(db, tier) == 0
    assert notices(db, member_id) == ["receipt", "payment-failed", "payment-failed",
                                      "payment-failed", "payment-failed", "final-notice",
                                      "lapsed"]
    with db.transaction() as session:
        assert perks.early_access_minutes(session, customer_id=customer, at=clock.now()) == 0
    assert len(provider.taken) == 1  # only the sign-up


def test_a_new_card_during_dunning_is_charged_at_once_for_the_original_period(db, clock):
    tier = make_tier(db, clock, price=1000)
    customer = make_customer(db, clock)
    provider = LocalCardProvider(db.sessions, clock)
    member_id = flows.subscribe(db, clock=clock, config=CONFIG, provider=provider,
                                request=flows.SubscribeRequest(customer, tier, GOOD, "s-1"))
    with db.transaction() as session:  # the saved card now stands for one without funds
        m = session.get(Membership, member_id)
    old_end = m.current_period_end
    flows.update_payment_method(db, clock=clock, config=CONFIG, provider=provider,
                                customer_id=customer, card=NO_FUNDS)
    clock.current = old_end
    renew(db, clock, provider)
    assert membership(db, member_id).status is MembershipStatus.past_due

    clock.advance(hours=3)
    flows.update_payment_method(db, clock=clock, config=CONFIG, provider=provider,
                                customer_id=customer, card=GOOD)

    m = membership(db, member_id)
    assert m.status is MembershipStatus.active
    assert (m.current_period_start, m.current_period_end) == (
        old_end, datetime(2026, 5, 2, 10, tzinfo=UTC))
    renewal = charges(db, member_id)[-1]
    assert (renewal.status, renewal.attempts) == (ChargeStatus.succeeded, 2)


# ------------------------------------------------------------------- pause, resume, cancel


def test_pause_banks_the_rest_of_the_period_and_resume_gives_it_back(db, clock):
    tier = make_tier(db, clock, price=1000, early_access_minutes=30)
    customer = make_customer(db, clock)
    provider = ScriptedProvider()
    member_id = join(db, clock, provider, customer_id=customer, tier_id=tier)

    clock.current = datetime(2026, 3, 12, 10, tzinfo=UTC)
    with db.transaction() as session:
        service.pause(session, clock=clock, customer_id=customer)
    assert membership(db, member_id).paused_remaining_seconds == 21 * 86400
    clock.current = datetime(2026, 5, 1, 10, tzinfo=UTC)
    renew(db, clock, provider)
    with db.transaction() as session:
        assert perks.early_access_minutes(session, customer_id=customer, at=clock.now()) == 0
    assert provider.calls == 1  # nothing charged while paused

    with db.transaction() as session:
        service.resume(session, clock=clock, customer_id=customer)
    m = membership(db, member_id)
    assert m.status is MembershipStatus.active
    assert m.current_period_end == datetime(2026, 5, 22, 10, tzinfo=UTC)

    clock.current = datetime(2026, 5, 22, 10, tzinfo=UTC)
    renew(db, clock, provider)
    m = membership(db, member_id)
    assert (m.current_period_start, m.current_period_end) == (
        datetime(2026, 5, 22, 10, tzinfo=UTC), datetime(2026, 6, 22, 10, tzinfo=UTC))
    assert [a for _, a in provider.taken] == [1000, 1000]


def test_a_paused_membership_resumes_by_itself_on_its_resume_date(db, clock):
    tier = make_tier(db, clock)
    customer = make_customer(db, clock)
    member_id = join(db, clock, ScriptedProvider(), customer_id=customer, tier_id=tier)
    with db.transaction() as session:
        service.pause(session, clock=clock, customer_id=customer,
                      resume_at=clock.now() + timedelta(days=10))

    clock.advance(days=10)
    assert jobs.resume_due(db, clock=clock) == 1
    assert jobs.resume_due(db, clock=clock) == 0
    m = membership(db, member_id)
    assert m.status is MembershipStatus.active
    assert m.current_period_end == datetime(2026, 4, 12, 10, tzinfo=UTC)


def test_cancel_at_period_end_keeps_perks_until_then_and_charges_nothing_more(db, clock):
    tier = make_tier(db, clock, cap=1)
    customer, waiting = make_customer(db, clock), make_customer(db, clock)
    provider = ScriptedProvider()
    member_id = join(db, clock, provider, customer_id=customer, tier_id=tier)
    with pytest.raises(OutOfStock):
        join(db, clock, provider, customer_id=waiting, tier_id=tier)
    with db.transaction() as session:
        service.join_waitlist(session, clock=clock, tier_id=tier, customer_id=waiting)
        service.cancel(session, clock=clock, customer_id=customer)
        assert perks.active_tier(session, customer_id=customer, at=clock.now()).id == tier

    clock.current = membership(db, member_id).current_period_end
    report = renew(db, clock, provider)

    m = membership(db, member_id)
    assert report.ended == 1
    assert (m.status, m.end_reason, m.ended_at) == (MembershipStatus.canceled,
                                                    EndReason.voluntary, clock.now())
    assert provider.calls == 1 and live_count(db, tier) == 0
    with db.transaction() as session:
        assert session.scalar(select(MailOutboxItem.customer_id).where(
            MailOutboxItem.event_id.like("waitlist:%"))) == waiting
    assert "waitlist-spot" in notices(db)
    join(db, clock, provider, customer_id=waiting, tier_id=tier)
    assert live_count(db, tier) == 1


def test_keeping_a_cancelled_membership_before_its_end_renews_it(db, clock):
    tier = make_tier(db, clock)
    customer = make_customer(db, clock)
    provider = ScriptedProvider()
    member_id = join(db, clock, provider, customer_id=customer, tier_id=tier)
    with db.transaction() as session:
        service.cancel(session, clock=clock, customer_id=customer)
        service.keep(session, clock=clock, customer_id=customer)

    clock.current = membership(db, member_id).current_period_end
    renew(db, clock, provider)

    assert membership(db, member_id).status is MembershipStatus.active
    assert len(provider.taken) == 2


def test_joining_twice_is_refused(db, clock):
    tier = make_tier(db, clock)
    customer = make_customer(db, clock)
    provider = ScriptedProvider()
    join(db, clock, provider, customer_id=customer, tier_id=tier)

    with pytest.raises(AlreadyExists):
        join(db, clock, provider, customer_id=customer, tier_id=tier)
    assert provider.calls == 1


# ---------------------------------------------------------------------------- proration


def _member_on(db, clock, provider, tier):
    customer = make_customer(db, clock)
    return customer, join(db, clock, provider, customer_id=customer, tier_id=tier)


def test_upgrading_mid_period_charges_the_exact_prorated_difference_now(db, clock):
    basic, plus = make_tier(db, clock, price=1000), make_tier(db, clock, price=2500)
    provider = ScriptedProvider()
    customer, member_id = _member_on(db, clock, provider, basic)

    clock.current = datetime(2026, 3, 12, 10, tzinfo=UTC)  # 21 of 31 days left
    with db.transaction() as session:
        plan = service.plan_change(session, clock=clock, customer_id=customer, new_tier_id=plus)
    flows.change_tier(db, clock=clock, config=CONFIG, provider=provider, customer_id=customer,
                      new_tier_id=plus)

    # credit 1000 x 21/31 = 677.42 -> 677; charge 2500 x 21/31 = 1693.55 -> 1694
    assert (plan.proration.credit_amount, plan.proration.charge_amount,
            plan.proration.net_amount) == (677, 1694, 1017)
    assert provider.taken[-1][1] == 1017
    m = membership(db, member_id)
    assert m.tier_id == plus and m.current_period_end == datetime(2026, 4, 2, 10, tzinfo=UTC)
    assert (live_count(db, basic), live_count(db, plus)) == (0, 1)
    clock.current = m.current_period_end
    renew(db, clock, provider)
    assert provider.taken[-1][1] == 2500


def test_downgrading_credits_the_difference_against_the_next_renewals(db, clock):
    basic, plus = make_tier(db, clock, price=1000), make_tier(db, clock, price=2500)
    provider = ScriptedProvider()
    customer, member_id = _member_on(db, clock, provider, plus)

    clock.current = datetime(2026, 3, 12, 10, tzinfo=UTC)
    flows.change_tier(db, clock=clock, config=CONFIG, provider=provider, customer_id=customer,
                      new_tier_id=basic)
    assert membership(db, member_id).credit_amount == 1017  # 1694 - 677
    assert provider.calls == 1

    clock.current = datetime(2026, 4, 2, 10, tzinfo=UTC)
    renew(db, clock, provider)
    clock.current = datetime(2026, 5, 2, 10, tzinfo=UTC)
    renew(db, clock, provider)

    april, may = charges(db, member_id)[-2:]
    assert (april.amount, april.credit_applied, april.status) == (0, 1000, ChargeStatus.succeeded)
    assert (may.amount, may.credit_applied) == (983, 17)
    assert membership(db, member_id).credit_amount == 0
    assert [a for _, a in provider.taken] == [2500, 983]


def test_switching_monthly_to_annual_restarts_the_period_and_credits_unused_time(db, clock):
    from dropline.memberships.rules import Interval

    monthly = make_tier(db, clock, price=1000)
    annual = make_tier(db, clock, price=10000, interval=Interval.annual)
    provider = ScriptedProvider()
    customer, member_id = _member_on(db, clock, provider, monthly)

    clock.current = datetime(2026, 3, 12, 10, tzinfo=UTC)
    flows.change_tier(db, clock=clock, config=CONFIG, provider=provider, customer_id=customer,
                      new_tier_id=annual)

    assert provider.taken[-1][1] == 10000 - 677
    m = membership(db, member_id)
    assert (m.current_period_start, m.current_period_end) == (
        clock.now(), datetime(2027, 3, 12, 10, tzinfo=UTC))


def test_a_declined_upgrade_changes_nothing(db, clock):
    basic, plus = make_tier(db, clock, price=1000), make_tier(db, clock, price=2500, cap=5)
    provider = ScriptedProvider()
    customer, member_id = _member_on(db, clock, provider, basic)
    provider.then(["card_declined"])

    with pytest.raises(PaymentDeclined):
        flows.change_tier(db, clock=clock, config=CONFIG, provider=provider,
                          customer_id=customer, new_tier_id=plus)

    assert membership(db, member_id).tier_id == basic
    assert (live_count(db, basic), live_count(db, plus)) == (1, 0)


# --------------------------------------------------------------------- the utility tier


def test_a_utility_tier_ships_its_consumable_each_cycle_and_credits_it_when_out(db, clock):
    make_location(db)
    _, variant = make_product(db, clock, price=1800, stock=1, family="refills")
    tier = make_tier(db, clock, price=2000, consumable_variant_id=variant, consumable_quantity=1,
                     out_of_stock_policy=OutOfStockPolicy.credit)
    provider = ScriptedProvider()
    customer, member_id = _member_on(db, clock, provider, tier)

    with db.transaction() as session:
        order = session.scalar(select(Order).where(Order.customer_id == customer))
        line = session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
        assert (order.total_amount, line.variant_id, line.quantity) == (0, variant, 1)
        assert session.scalar(select(StockLevel.on_hand)) == 0

    clock.current = membership(db, member_id).current_period_end
    renew(db, clock, provider)

    assert membership(db, member_id).credit_amount == 1800
    assert "consumable-out-of-stock" in notices(db, member_id)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1


# ------------------------------------------------------------------------------- notices


def test_notices_go_out_through_the_mail_outbox_once(db, clock, tmp_path):
    tier = make_tier(db, clock)
    customer = make_customer(db, clock, email="ada@example.com")
    join(db, clock, ScriptedProvider(), customer_id=customer, tier_id=tier)
    sender = FolderSender(tmp_path / "outbox")

    def send() -> int:
        return send_mail_outbox(db, clock=clock, sender=sender, shop_name="Fig & Smoke",
                                public_url="https://shop.example", secret_key="test-secret",
                                max_attempts=3).sent

    assert send() == 1
    assert send() == 0

    [path] = (tmp_path / "outbox").glob("*.eml")
    message = message_from_bytes(path.read_bytes())
    assert message["To"] == "ada@example.com"
    assert message["Subject"].startswith("Receipt: ")
    assert "£10.00 was charged to your card ending 4242" in path.read_text()
