"""Pure membership rules, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dropline.errors import InvalidInput
from dropline.memberships.rules import (
    DEFAULT_ONBOARDING,
    CohortMember,
    DunningPolicy,
    Interval,
    MemberActivity,
    MemberPriceKind,
    OnboardingStep,
    PurchaseRecord,
    Segment,
    SegmentRules,
    add_months,
    classify_member,
    cohort_map,
    member_unit_price,
    next_period,
    onboarding_due,
    peak_days,
    prorate,
    prorate_new_interval,
)

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def test_months_are_counted_from_the_anchor_and_clamped_to_short_months():
    assert [add_months(T0, n).date().isoformat() for n in range(5)] == [
        "2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]
    assert add_months(datetime(2028, 2, 29, tzinfo=UTC), 12).date() == date(2029, 2, 28)
    assert next_period(T0, Interval.annual, -1) == (T0, datetime(2027, 1, 31, 9, tzinfo=UTC))


def test_proration_credits_and_charges_each_share_rounded_half_up():
    start, end = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
    up = prorate(old_price=1000, new_price=2500, period_start=start, period_end=end,
                 at=datetime(2026, 3, 12, tzinfo=UTC))
    half = prorate(old_price=999, new_price=1999, period_start=start, period_end=end,
                   at=start + (end - start) / 2)

    assert (up.credit_amount, up.charge_amount, up.net_amount) == (677, 1694, 1017)
    assert (half.credit_amount, half.charge_amount, half.net_amount) == (500, 1000, 500)
    down = prorate(old_price=2500, new_price=1000, period_start=start, period_end=end,
                   at=datetime(2026, 3, 12, tzinfo=UTC))
    assert down.net_amount == -1017 and not down.is_charge
    with pytest.raises(InvalidInput):
        prorate(old_price=1, new_price=2, period_start=start, period_end=end, at=end)
    annual = prorate_new_interval(old_price=1000, new_price=10000, period_start=start,
                                  period_end=end, at=datetime(2026, 3, 12, tzinfo=UTC))
    assert (annual.credit_amount, annual.charge_amount, annual.net_amount) == (677, 10000, 9323)


def test_member_prices_take_percent_or_fixed_off_and_never_go_below_zero():
    assert member_unit_price(4250, kind=MemberPriceKind.percent, value=10) == 3825
    assert member_unit_price(4255, kind=MemberPriceKind.percent, value=15) == 3617  # 638.25 off
    assert member_unit_price(4250, kind=MemberPriceKind.fixed, value=500) == 3750
    assert member_unit_price(300, kind=MemberPriceKind.fixed, value=500) == 0
    assert member_unit_price(4250, kind=MemberPriceKind.none, value=99) == 4250


def test_default_dunning_retries_four_times_twelve_hours_apart_then_grace():
    policy = DunningPolicy()

    assert policy.schedule(T0) == [T0 + timedelta(hours=h) for h in (12, 24, 36, 48)]
    assert policy.next_attempt_at(first_failed_at=T0, failed_attempts=1) == at(0.5)
    assert policy.next_attempt_at(first_failed_at=T0, failed_attempts=5) is None
    assert policy.lapse_at(final_failed_at=at(2)) == at(4)
    assert DunningPolicy(retries=2, retry_spacing_hours=24).schedule(T0) == [at(1), at(2)]
    with pytest.raises(InvalidInput):
        DunningPolicy(retry_spacing_hours=0)


RULES = SegmentRules()
NOW = datetime(2026, 12, 1, tzinfo=UTC)
PROGRAMME = datetime(2026, 1, 1, tzinfo=UTC)


def classify(joined: datetime, paid: int, purchases, events=()):
    return classify_member(MemberActivity(joined, paid, tuple(purchases)), rules=RULES,
                           programme_started_at=PROGRAMME, event_days=events, now=NOW)


def test_an_early_high_spending_member_is_founding():
    joined = PROGRAMME + timedelta(days=20)  # 314 days of tenure
    result = classify(joined, paid=2500 * 11, purchases=[
        PurchaseRecord(joined + timedelta(days=40), 9000, ("eau-de-parfum",))])

    assert result.segment is Segment.founding
    assert result.monthly_spend == (27500 + 9000) * 30 // 314
    assert "joined within 90 days" in result.reason


def test_the_same_spend_joining_late_is_not_founding():
    joined = PROGRAMME + timedelta(days=120)
    assert classify(joined, paid=100_000, purchases=[]).segment is Segment.seasonal


def test_steady_buyers_and_consumable_buyers_are_utility():
    joined = PROGRAMME + timedelta(days=200)
    steady = [PurchaseRecord(NOW - timedelta(days=d), 3000, ("candles",))
              for d in (10, 40, 70, 100, 130)]
    refills = [PurchaseRecord(NOW - timedelta(days=d), 2800, ("refills",))
               for d in (5, 6, 60, 150)]

    a, b = classify(joined, 0, steady), classify(joined, 0, refills)

    assert (a.segment, a.gap_cv) == (Segment.utility, 0.0)
    assert b.segment is Segment.utility and b.consumable_share == 1.0
    assert "100% of orders are consumables" in b.reason


def test_bursty_buyers_around_drops_are_seasonal_with_the_share_reported():
    joined = PROGRAMME + timedelta(days=200)
    drops = [date(2026, 7, 1), date(2026, 11, 20)]
    burst = [PurchaseRecord(datetime(2026, 7, 1, 12, tzinfo=UTC), 5000),
             PurchaseRecord(datetime(2026, 7, 2, 12, tzinfo=UTC), 4000),
             PurchaseRecord(datetime(2026, 7, 3, 12, tzinfo=UTC), 4000),
             PurchaseRecord(datetime(2026, 11, 21, 12, tzinfo=UTC), 6000)]

    result = classify(joined, 0, burst, events=drops)

    assert result.segment is Segment.seasonal
    assert result.event_share == 1.0 and result.gap_cv is not None and result.gap_cv > 0.5
    assert classify(joined, 0, []).reason == "no orders in the last 180 days"


def test_thresholds_can_be_changed_and_are_validated():
    joined = PROGRAMME + timedelta(days=200)
    three = [PurchaseRecord(NOW - timedelta(days=d), 3000) for d in (10, 40, 70)]
    looser = SegmentRules.from_dict({"utility_min_orders": 3})

    assert classify(joined, 0, three).segment is Segment.seasonal
    assert classify_member(MemberActivity(joined, 0, tuple(three)), rules=looser,
                           programme_started_at=PROGRAMME, event_days=(),
                           now=NOW).segment is Segment.utility
    with pytest.raises(InvalidInput):
        SegmentRules.from_dict({"utility_min_consumable_share": 2})
    with pytest.raises(InvalidInput):
        SegmentRules.from_dict({"no_such_rule": 1})


def test_peak_days_stand_out_from_the_median_day():
    days = [date(2026, 5, d) for d in range(1, 11)] + [date(2026, 5, 4)] * 5
    assert peak_days(days) == {date(2026, 5, 4)}


def test_onboarding_steps_fall_due_by_day_or_at_the_first_event_inside_30_days():
    joined = T0
    first = {"drop.early_access_used": at(5)}

    due = onboarding_due(DEFAULT_ONBOARDING, joined_at=joined, now=at(14), done={"welcome"},
                         first_events=first)

    assert [(s.key, when) for s, when in due] == [
        ("perk-reveal", at(2)), ("first-early-access", at(5)), ("check-in", at(14))]
    late = onboarding_due(DEFAULT_ONBOARDING, joined_at=joined, now=at(60), done=set(),
                          first_events={"drop.early_access_used": at(45)})
    assert "first-early-access" not in [s.key for s, _ in late]
    with pytest.raises(InvalidInput):
        OnboardingStep("bad", "s", "t", day=2, event="x")


def test_cohort_map_counts_revenue_and_retention_per_segment_and_join_month():
    now = datetime(2026, 8, 1, tzinfo=UTC)
    members = [
        CohortMember("founding", datetime(2026, 1, 10, tzinfo=UTC), None, 10000),
        CohortMember("founding", datetime(2026, 1, 20, tzinfo=UTC),
                     datetime(2026, 3, 1, tzinfo=UTC), 4000),
        CohortMember("seasonal", datetime(2026, 7, 5, tzinfo=UTC), None, 900),
    ]

    cells = cohort_map(members, now=now)

    assert [(c.segment, c.join_month, c.members, c.active, c.revenue) for c in cells] == [
        ("founding", "2026-01", 2, 1, 14000), ("seasonal", "2026-07", 1, 1, 900)]
    assert cells[0].retention == {"m1": 1.0, "m3": 0.5, "m6": 0.5}
    assert cells[1].retention == {"m1": None, "m3": None, "m6": None}
