"""Pure membership logic over plain data: billing periods, proration, member prices, the dunning
schedule, frequency segments, the onboarding schedule and the cohort map. No session, no I/O.

Money is integer minor units. Where a share of a price is taken (proration, a percentage off),
it is rounded once, half up, with integer arithmetic, so every figure is exact and repeatable.
"""

from __future__ import annotations

import calendar
import enum
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

from dropline.errors import InvalidInput

# ----------------------------------------------------------------------------- vocabulary


class Interval(enum.StrEnum):
    monthly = "monthly"
    annual = "annual"


class MembershipStatus(enum.StrEnum):
    incomplete = "incomplete"  # signed up; the first payment is being taken
    trialing = "trialing"
    active = "active"
    past_due = "past-due"  # a renewal failed; dunning retries run; perks still on
    paused = "paused"
    canceled = "canceled"  # ended by the member (at the end of a period)
    lapsed = "lapsed"  # ended because renewals kept failing
    failed = "failed"  # the first payment was declined; never started


# A live membership holds a spot on its tier (caps count these).
LIVE_STATUSES = (MembershipStatus.incomplete, MembershipStatus.trialing, MembershipStatus.active, MembershipStatus.past_due,
                 MembershipStatus.paused)
# Perks act while the member is in good standing or inside dunning's grace.
PERK_STATUSES = (MembershipStatus.trialing, MembershipStatus.active, MembershipStatus.past_due)


class EndReason(enum.StrEnum):
    voluntary = "voluntary"
    failed_payment = "failed-payment"


class MemberPriceKind(enum.StrEnum):
    none = "none"
    percent = "percent"  # value: whole percent off (10 = 10 %)
    fixed = "fixed"  # value: minor units off each unit


class SubsidyKind(enum.StrEnum):
    none = "none"
    free = "free"  # local delivery costs the member nothing
    discount = "discount"  # amount: minor units off the delivery price


class OutOfStockPolicy(enum.StrEnum):
    skip = "skip"  # skip this cycle's consumable and tell the member
    credit = "credit"  # credit its value against the next renewal


class Segment(enum.StrEnum):
    founding = "founding"
    utility = "utility"
    seasonal = "seasonal"


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    if denominator <= 0 or numerator < 0:
        raise ValueError("round_half_up takes a non-negative numerator and positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


# ------------------------------------------------------------------------- billing periods


def add_months(anchor: datetime, months: int) -> datetime:
    """The same day of month ``months`` later, clamped to the month's end (31 Jan + 1 = 28/29
    Feb; + 2 = 31 Mar: always counted from the anchor, so a short month never shifts later
    periods)."""
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_shift(anchor: datetime, interval: Interval, count: int) -> datetime:
    return add_months(anchor, count * (12 if interval is Interval.annual else 1))


def next_period(anchor: datetime, interval: Interval, index: int) -> tuple[datetime, datetime]:
    """Bounds of the period after period ``index`` (index -1: the first period starts at the
    anchor; a trial or a resumed pause ends at the anchor)."""
    return period_shift(anchor, interval, index + 1), period_shift(anchor, interval, index + 2)


def monthly_equivalent(price_amount: int, interval: Interval) -> int:
    return price_amount if interval is Interval.monthly else round_half_up(price_amount, 12)


# ------------------------------------------------------------------------------ proration


@dataclass(frozen=True)
class Proration:
    credit_amount: int  # the unused part of the old tier's price
    charge_amount: int  # the new tier's price for the same remaining time
    net_amount: int  # charge - credit: > 0 is charged now, < 0 becomes account credit

    @property
    def is_charge(self) -> bool:
        return self.net_amount > 0


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def prorate(*, old_price: int, new_price: int, period_start: datetime, period_end: datetime,
            at: datetime) -> Proration:
    """Switch tiers at ``at`` inside the period [start, end): credit the old tier's unused share
    and charge the new tier's share of the same time. Each share is rounded half up on its own,
    so the two lines and the net reconcile exactly."""
    if not period_start <= at < period_end:
        raise InvalidInput("a tier change must fall inside the current period")
    total, remaining = _micros(period_end - period_start), _micros(period_end - at)
    credit = round_half_up(old_price * remaining, total)
    charge = round_half_up(new_price * remaining, total)
    return Proration(credit, charge, charge - credit)


def prorate_new_interval(*, old_price: int, new_price: int, period_start: datetime,
                         period_end: datetime, at: datetime) -> Proration:
    """Switching between monthly and annual restarts the billing period at ``at``: the whole
    new price is charged, less the old tier's unused share."""
    if not period_start <= at < period_end:
        raise InvalidInput("a tier change must fall inside the current period")
    credit = round_half_up(old_price * _micros(period_end - at), _micros(period_end - period_start))
    return Proration(credit, new_price, new_price - credit)


# ----------------------------------------------------------------------------- perk prices


def member_unit_price(base_amount: int, *, kind: MemberPriceKind, value: int) -> int:
    if base_amount < 0:
        raise ValueError("base_amount must be non-negative")
    if kind is MemberPriceKind.percent:
        return base_amount - round_half_up(base_amount * min(max(value, 0), 100), 100)
    if kind is MemberPriceKind.fixed:
        return max(0, base_amount - max(value, 0))
    return base_amount


# ------------------------------------------------------------------------------- dunning


@dataclass(frozen=True)
class DunningPolicy:
    """Default: after the renewal attempt at the period end fails, retry 4 times, 12 hours
    apart; if the last retry fails too, the membership lapses after a grace period."""

    retries: int = 4
    retry_spacing_hours: int = 12
    grace_hours: int = 48

    def __post_init__(self) -> None:
        if self.retries < 0 or self.retry_spacing_hours < 1 or self.grace_hours < 0:
            raise InvalidInput("dunning needs retries >= 0, spacing >= 1 h and grace >= 0 h")

    @property
    def attempts(self) -> int:
        return 1 + self.retries

    def next_attempt_at(self, *, first_failed_at: datetime, failed_attempts: int
                        ) -> datetime | None:
        """When to try again after ``failed_attempts`` failures, the first at
        ``first_failed_at``; None once the retries are used up. Retries keep to the grid set
        by the first failure, so a slow worker never pushes the whole schedule later."""
        if failed_attempts >= self.attempts:
            return None
        return first_failed_at + timedelta(hours=self.retry_spacing_hours * failed_attempts)

    def lapse_at(self, *, final_failed_at: datetime) -> datetime:
        return final_failed_at + timedelta(hours=self.grace_hours)

    def schedule(self, first_failed_at: datetime) -> list[datetime]:
        """Every retry time after a first failure at ``first_failed_at``."""
        return [first_failed_at + timedelta(hours=self.retry_spacing_hours * k)
                for k in range(1, self.retries + 1)]


# ------------------------------------------------------------------------------ segments


@dataclass(frozen=True)
class SegmentRules:
    """The thresholds of the frequency segments. Shown by ``dropline members segment-rules``
    and ``GET /api/v1/admin/memberships/segment-rules``; changed with PUT (or the CLI).

    A member is, checking in this order:
    * founding: joined within ``founding_window_days`` of the programme's first member, and
      spends at least ``founding_min_monthly_spend`` a month (membership plus orders, averaged
      over their time as a member);
    * utility: at least ``utility_min_orders`` orders in the last ``lookback_days``, bought
      steadily (the gaps between orders vary by at most ``utility_max_gap_cv``, as a coefficient
      of variation) or mostly consumables (``consumable_families`` in at least
      ``utility_min_consumable_share`` of orders);
    * seasonal: everyone else: members who buy rarely, or in bursts around drops and events
      (``event_window_days`` either side of a drop or peak day counts as "around").
    """

    founding_window_days: int = 90
    founding_min_monthly_spend: int = 3000
    lookback_days: int = 180
    utility_min_orders: int = 4
    utility_max_gap_cv: float = 0.5
    utility_min_consumable_share: float = 0.5
    consumable_families: tuple[str, ...] = ("refills",)
    event_window_days: int = 3

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["consumable_families"] = list(self.consumable_families)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentRules:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown segment rule(s): {', '.join(unknown)}")
        values = {**cls().as_dict(), **data}
        values["consumable_families"] = tuple(values["consumable_families"])
        rules = cls(**values)
        rules.validate()
        return rules

    def validate(self) -> None:
        if min(self.founding_window_days, self.founding_min_monthly_spend, self.lookback_days,
               self.utility_min_orders, self.event_window_days) < 0:
            raise InvalidInput("segment thresholds must not be negative")
        if not 0 <= self.utility_min_consumable_share <= 1 or self.utility_max_gap_cv < 0:
            raise InvalidInput("shares lie between 0 and 1; the gap variation is >= 0")


@dataclass(frozen=True)
class PurchaseRecord:
    at: datetime
    amount: int
    families: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberActivity:
    joined_at: datetime
    membership_paid: int  # membership charges that succeeded, minor units
    purchases: tuple[PurchaseRecord, ...] = ()


@dataclass(frozen=True)
class Classification:
    segment: Segment
    reason: str
    monthly_spend: int
    orders_in_lookback: int
    gap_cv: float | None
    consumable_share: float
    event_share: float


def classify_member(activity: MemberActivity, *, rules: SegmentRules,
                    programme_started_at: datetime, event_days: Iterable[date],
                    now: datetime) -> Classification:
    tenure_days = max((now - activity.joined_at).total_seconds() / 86400, 1.0)
    since_join = [p for p in activity.purchases if p.at >= activity.joined_at]
    spend = activity.membership_paid + sum(p.amount for p in since_join)
    monthly_spend = int(spend * 30 / tenure_days) if tenure_days >= 30 else spend
    recent = sorted((p for p in activity.purchases
                     if p.at > now - timedelta(days=rules.lookback_days)), key=lambda p: p.at)
    gaps = [(b.at - a.at).total_seconds() / 86400 for a, b in zip(recent, recent[1:])]
    gap_cv = (statistics.pstdev(gaps) / statistics.mean(gaps)
              if len(gaps) >= 2 and statistics.mean(gaps) > 0 else None)
    consumable = sum(1 for p in recent if set(p.families) & set(rules.consumable_families))
    consumable_share = consumable / len(recent) if recent else 0.0
    days = set(event_days)
    window = timedelta(days=rules.event_window_days)
    near_events = sum(1 for p in recent if any(
        abs((p.at.date() - d).days) <= window.days for d in days))
    event_share = near_events / len(recent) if recent else 0.0
    figures = dict(monthly_spend=monthly_spend, orders_in_lookback=len(recent), gap_cv=gap_cv,
                   consumable_share=round(consumable_share, 3),
                   event_share=round(event_share, 3))

    early = activity.joined_at <= programme_started_at + timedelta(days=rules.founding_window_days)
    if early and monthly_spend >= rules.founding_min_monthly_spend:
        return Classification(Segment.founding, (
            f"joined within {rules.founding_window_days} days of the first member and spends "
            f"{monthly_spend} a month (>= {rules.founding_min_monthly_spend})"), **figures)
    if len(recent) >= rules.utility_min_orders:
        steady = gap_cv is not None and gap_cv <= rules.utility_max_gap_cv
        consumables = consumable_share >= rules.utility_min_consumable_share
        if steady or consumables:
            why = (f"gaps between orders vary by {gap_cv:.2f} (<= {rules.utility_max_gap_cv})"
                   if steady else
                   f"{consumable_share:.0%} of orders are consumables "
                   f"(>= {rules.utility_min_consumable_share:.0%})")
            return Classification(Segment.utility, (
                f"{len(recent)} orders in {rules.lookback_days} days "
                f"(>= {rules.utility_min_orders}); {why}"), **figures)
    if recent:
        reason = (f"{len(recent)} orders in {rules.lookback_days} days, not steady; "
                  f"{event_share:.0%} of them around drops and events")
    else:
        reason = f"no orders in the last {rules.lookback_days} days"
    return Classification(Segment.seasonal, reason, **figures)


def peak_days(order_days: Sequence[date], *, multiple: float = 3.0, minimum: int = 3
              ) -> set[date]:
    """Days with at least ``multiple`` times the median daily order count (and ``minimum``
    orders): the shop's drop and event days when no drop calendar exists."""
    counts: dict[date, int] = {}
    for day in order_days:
        counts[day] = counts.get(day, 0) + 1
    if not counts:
        return set()
    median = statistics.median(counts.values())
    return {d for d, n in counts.items() if n >= max(minimum, multiple * median)}


# ---------------------------------------------------------------------------- onboarding


ONBOARDING_CHANNELS = ("email", "account")  # a mail, or a notice on the member's account page


@dataclass(frozen=True)
class OnboardingStep:
    key: str
    subject: str
    text: str
    day: int | None = None  # due this many days after joining ...
    event: str | None = None  # ... or when the member's first such domain event happens
    # A day step that asks for an action (buy from a drop, use early access): it is done when
    # the member's first such event happens, and its message is a nudge sent on its day only
    # if it is not done by then.
    completes_on: str | None = None
    channel: str = "email"

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > 40:
            raise InvalidInput("an onboarding step needs a key of 1 to 40 characters",
                               field="key")
        if not self.subject.strip() or len(self.subject) > 200:
            raise InvalidInput(f"onboarding step {self.key!r} needs a subject (at most 200 "
                               "characters)", field="subject")
        if (self.day is None) == (self.event is None):
            raise InvalidInput(f"onboarding step {self.key!r} needs exactly one of day or event")
        if self.day is not None and not 0 <= self.day <= ONBOARDING_DAYS:
            raise InvalidInput(f"onboarding step {self.key!r}: day must be 0..{ONBOARDING_DAYS}")
        if self.completes_on is not None and self.day is None:
            raise InvalidInput(f"onboarding step {self.key!r}: completes_on needs a day (the "
                               "day its nudge is sent)")
        if self.channel not in ONBOARDING_CHANNELS:
            raise InvalidInput(f"onboarding step {self.key!r}: channel must be one of "
                               f"{', '.join(ONBOARDING_CHANNELS)}", field="channel")


ONBOARDING_DAYS = 30
DEFAULT_ONBOARDING: tuple[OnboardingStep, ...] = (
    OnboardingStep("welcome", "Welcome to the club", "Your membership has started. Here is "
                   "what it gives you and how to manage it.", day=0),
    OnboardingStep("perk-reveal", "Your perks, revealed", "Member prices, early access to drops "
                   "and delivery perks: here is how each works.", day=2),
    OnboardingStep("first-early-access", "You were in first", "You used your early access for "
                   "the first time. Nice.", event="drop.early_access_used"),
    OnboardingStep("check-in", "Two weeks in: how is it going?", "Reply and tell us: "
                   "we read every answer.", day=14),
    OnboardingStep("survey", "One month in: a three-question survey", "Help us shape the "
                   "next drop.", day=30),
)


def onboarding_due(steps: Sequence[OnboardingStep], *, joined_at: datetime, now: datetime,
                   done: Iterable[str], first_events: dict[str, datetime]
                   ) -> list[tuple[OnboardingStep, datetime]]:
    """Steps that became due by ``now`` and are not done, with the time each became due. An
    event step is due at the member's first such event inside the flow's 30 days."""
    finished, due = set(done), []
    flow_end = joined_at + timedelta(days=ONBOARDING_DAYS, hours=12)
    for step in steps:
        if step.key in finished:
            continue
        if step.day is not None and step.completes_on is None:
            at = joined_at + timedelta(days=step.day)
        else:  # done on the member's own action
            seen = first_events.get(step.event or step.completes_on or "")
            if seen is None or not joined_at <= seen <= flow_end:
                continue
            at = seen
        if at <= now:
            due.append((step, at))
    return due


def onboarding_nudges(steps: Sequence[OnboardingStep], *, joined_at: datetime,
                      now: datetime, done: Iterable[str]) -> list[OnboardingStep]:
    """Steps done on an action (``completes_on``) whose day has come and that are not done:
    their message goes out as a nudge (once: the notice's key dedupes it)."""
    finished = set(done)
    return [step for step in steps
            if step.completes_on is not None and step.key not in finished
            and step.day is not None and joined_at + timedelta(days=step.day) <= now]


def steps_from_config(data: list[dict[str, Any]] | None) -> tuple[OnboardingStep, ...]:
    if not data:
        return DEFAULT_ONBOARDING
    try:
        steps = tuple(OnboardingStep(**item) for item in data)
    except TypeError as exc:
        raise InvalidInput(f"bad onboarding step: {exc}") from None
    if len({s.key for s in steps}) != len(steps):
        raise InvalidInput("onboarding step keys must be unique")
    return steps


def retained(*, started_at: datetime, ended_at: datetime | None, now: datetime,
             days: int) -> bool | None:
    """Was the member still a member ``days`` after joining? None if that day has not come."""
    mark = started_at + timedelta(days=days)
    if mark > now:
        return None
    return ended_at is None or ended_at > mark


# ----------------------------------------------------------------------------- cohort map


@dataclass(frozen=True)
class CohortMember:
    segment: str
    joined_at: datetime
    ended_at: datetime | None
    revenue: int


@dataclass
class CohortCell:
    segment: str
    join_month: str  # YYYY-MM
    members: int = 0
    active: int = 0
    revenue: int = 0
    # Share of the cohort still members after 1, 3 and 6 months (None: too young to tell).
    retention: dict[str, float | None] = field(default_factory=dict)


RETENTION_MONTHS = (1, 3, 6)


def cohort_map(members: Iterable[CohortMember], *, now: datetime) -> list[CohortCell]:
    cells: dict[tuple[str, str], CohortCell] = {}
    kept: dict[tuple[str, str], dict[int, list[bool]]] = {}
    for m in members:
        key = (m.segment, f"{m.joined_at:%Y-%m}")
        cell = cells.setdefault(key, CohortCell(*key))
        cell.members += 1
        cell.active += m.ended_at is None
        cell.revenue += m.revenue
        for months in RETENTION_MONTHS:
            mark = add_months(m.joined_at, months)
            if mark <= now:
                kept.setdefault(key, {}).setdefault(months, []).append(
                    m.ended_at is None or m.ended_at > mark)
    for key, cell in cells.items():
        for months in RETENTION_MONTHS:
            flags = kept.get(key, {}).get(months)
            cell.retention[f"m{months}"] = (round(sum(flags) / len(flags), 3) if flags else None)
    return sorted(cells.values(), key=lambda c: (c.segment, c.join_month))
