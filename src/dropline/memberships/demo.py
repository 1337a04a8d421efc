"""Demo step: Ember & Fig's membership programme, launched 330 days before "now": four tiers,
members in every segment (founding, utility, seasonal) with a year of monthly (and annual)
renewals, dunning that recovered or lapsed, voluntary cancellations, pauses, trials, a
founders' poll and onboarding progress. Segments are then computed by the real rule.

History is written in bulk (as the shop's own demo steps do): the rows are what the renewal
flow would have written, without charging a provider a thousand times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from dropline.clock import FrozenClock
from dropline.demo import DemoContext, demo_step
from dropline.drops.service import started_drop_days
from dropline.memberships import onboarding, segments, service
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipPaymentMethod,
    MembershipTier,
    OnboardingAssignment,
    OnboardingProgress,
    Poll,
    PollVote,
)
from dropline.memberships.onboarding_rules import DEFAULT_FLOW, flows_as_config
from dropline.memberships.rules import (
    DEFAULT_ONBOARDING,
    LIVE_STATUSES,
    DunningPolicy,
    EndReason,
    Interval,
    MemberActivity,
    MemberPriceKind,
    MembershipStatus,
    OutOfStockPolicy,
    PurchaseRecord,
    Segment,
    SegmentRules,
    SubsidyKind,
    classify_member,
    period_shift,
)
from dropline.orders.models import Order, OrderLine

LAUNCH_DAYS_AGO = 330
FOUNDING_JOIN_DAYS = 45
RENEWAL_FAILS = 0.05  # a renewal's first attempt is declined
RECOVERS = 0.6  # ... and a later retry (or a new card) takes it
CANCELS = 0.025  # a member cancels at the end of a period
PAUSED_NOW = 0.04


def _tiers(refill_variant_id: int | None) -> dict[str, service.TierSpec]:
    gbp = "GBP"
    tiers = {
        "friends": service.TierSpec(
            slug="friends-of-the-fig", name="Friends of the Fig", interval=Interval.monthly,
            price_amount=900, currency=gbp, trial_days=14,
            description="Member prices and a head start on every drop.",
            member_price_kind=MemberPriceKind.percent, member_price_value=5,
            early_access_minutes=30),
        "inner": service.TierSpec(
            slug="inner-circle", name="Inner Circle", interval=Interval.monthly,
            price_amount=2500, currency=gbp, cap=150,
            description="Two hours' early access, 10% off and free local delivery.",
            member_price_kind=MemberPriceKind.percent, member_price_value=10,
            early_access_minutes=120, delivery_subsidy_kind=SubsidyKind.free),
        "founders": service.TierSpec(
            slug="founders-annual", name="Founders' Annual", interval=Interval.annual,
            price_amount=36000, currency=gbp, cap=50,
            description="For the first supporters: 15% off, four hours' early access, free "
                        "delivery and a vote on the next scent.",
            member_price_kind=MemberPriceKind.percent, member_price_value=15,
            early_access_minutes=240, delivery_subsidy_kind=SubsidyKind.free),
    }
    if refill_variant_id is not None:
        tiers["refill"] = service.TierSpec(
            slug="refill-club", name="Refill Club", interval=Interval.monthly,
            price_amount=3200, currency=gbp,
            description="A 100 ml refill every month, £2 off local delivery, 5% off.",
            member_price_kind=MemberPriceKind.percent, member_price_value=5,
            delivery_subsidy_kind=SubsidyKind.discount, delivery_subsidy_amount=200,
            consumable_variant_id=refill_variant_id, consumable_quantity=1,
            out_of_stock_policy=OutOfStockPolicy.credit)
    return tiers


@dataclass
class PlannedMember:
    customer_id: int
    tier: str
    started_at: datetime
    status: MembershipStatus = MembershipStatus.active
    charges: list[dict[str, Any]] = field(default_factory=list)
    period: tuple[datetime, datetime] | None = None
    period_index: int = 0
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    grace_until: datetime | None = None
    paused_at: datetime | None = None
    paused_remaining: int | None = None
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False


def plan_member(rng: random.Random, member: PlannedMember, spec: service.TierSpec, *,
                now: datetime, dunning: DunningPolicy) -> PlannedMember:
    """Walks the membership period by period from its start to ``now``."""
    start = member.started_at
    anchor, index = start, 0
    if spec.trial_days and now - start < timedelta(days=spec.trial_days):
        end = start + timedelta(days=spec.trial_days)
        member.status, member.trial_end = MembershipStatus.trialing, end
        member.period, member.period_index = (start, end), -1
        return member
    while True:
        ps, pe = period_shift(anchor, spec.interval, index), period_shift(anchor, spec.interval,
                                                                          index + 1)
        kind = ChargeKind.signup if index == 0 else ChargeKind.renewal
        charge: dict[str, Any] = {"kind": kind, "period_start": ps, "period_end": pe,
                                  "amount": spec.price_amount, "attempts": 1,
                                  "status": ChargeStatus.succeeded, "paid_at": ps,
                                  "first_failed_at": None, "decline_code": None}
        if index > 0 and rng.random() < RENEWAL_FAILS:
            charge.update(first_failed_at=ps, decline_code="insufficient_funds")
            if rng.random() < RECOVERS:
                attempts = rng.randint(2, dunning.attempts)
                paid_at = ps + timedelta(hours=dunning.retry_spacing_hours * (attempts - 1))
                charge.update(attempts=attempts, paid_at=paid_at)
                if paid_at > now:  # still in dunning today
                    failed = int((now - ps) / timedelta(hours=dunning.retry_spacing_hours)) + 1
                    charge.update(status=ChargeStatus.pending, paid_at=None,
                                  attempts=min(failed, dunning.attempts))
                    charge["next_attempt_at"] = ps + timedelta(
                        hours=dunning.retry_spacing_hours * charge["attempts"])
                    member.charges.append(charge)
                    member.status = MembershipStatus.past_due
                    member.period, member.period_index = (
                        period_shift(anchor, spec.interval, index - 1), ps), index - 1
                    return member
            else:
                final = ps + timedelta(hours=dunning.retry_spacing_hours * dunning.retries)
                charge.update(status=ChargeStatus.failed, paid_at=None,
                              attempts=dunning.attempts)
                member.charges.append(charge)
                lapse = dunning.lapse_at(final_failed_at=final)
                member.period, member.period_index = (
                    period_shift(anchor, spec.interval, index - 1), ps), index - 1
                if lapse > now:
                    member.status, member.grace_until = MembershipStatus.past_due, lapse
                else:
                    member.status, member.ended_at = MembershipStatus.lapsed, lapse
                    member.end_reason = EndReason.failed_payment
                return member
        member.charges.append(charge)
        member.period, member.period_index = (ps, pe), index
        if pe > now:
            if rng.random() < PAUSED_NOW and spec.interval is Interval.monthly:
                paused_at = now - timedelta(days=rng.randint(1, 10))
                if paused_at > ps:
                    member.status, member.paused_at = MembershipStatus.paused, paused_at
                    member.paused_remaining = int((pe - paused_at).total_seconds())
            elif rng.random() < CANCELS:
                member.cancel_at_period_end = True
            return member
        if rng.random() < CANCELS:
            member.status, member.ended_at = MembershipStatus.canceled, pe
            member.end_reason = EndReason.voluntary
            return member
        index += 1


@demo_step("memberships", order=600, label="Memberships")
def seed_memberships(ctx: DemoContext) -> str:
    now, rng, session = ctx.now, ctx.rng, ctx.session
    launch = now - timedelta(days=LAUNCH_DAYS_AGO)
    refill_variant = ctx.ids.variants.get("EF-FIG-R100")
    specs = _tiers(refill_variant)
    tier_clock = FrozenClock(launch)
    tiers = {key: service.create_tier(session, clock=tier_clock, spec=spec)
             for key, spec in specs.items()}

    purchases = _purchases(ctx)
    rules, dunning = SegmentRules(), DunningPolicy()
    plans: list[PlannedMember] = []
    taken: dict[str, int] = {key: 0 for key in specs}

    def room(key: str) -> bool:
        cap = specs[key].cap
        return cap is None or taken[key] < cap

    for customer_id, shopper in sorted(ctx.ids.customers.items()):
        signed = max(shopper.signed_up_at, launch)
        history = purchases.get(customer_id, [])
        if shopper.signed_up_at < launch + timedelta(days=FOUNDING_JOIN_DAYS) and (
                rng.random() < 0.35):
            key = "founders" if rng.random() < 0.4 and room("founders") else "inner"
            start = signed + timedelta(hours=rng.randint(1, 24 * 20))
        else:
            start = signed + timedelta(days=rng.uniform(0, 60))
            if start >= now - timedelta(hours=1):
                continue
            joined_late = max(start, launch + timedelta(days=rules.founding_window_days + 1))
            steady = classify_member(MemberActivity(joined_late, 0, tuple(history)), rules=rules,
                                     programme_started_at=launch, event_days=(), now=now)
            if steady.segment is Segment.utility and rng.random() < 0.8:
                key, start = ("refill" if "refill" in specs else "friends"), joined_late
            elif rng.random() < 0.18:
                key = "inner" if rng.random() < 0.3 else "friends"
            else:
                continue
        if start >= now or not room(key):
            continue
        taken[key] += 1
        plans.append(plan_member(rng, PlannedMember(customer_id, key, start), specs[key],
                                 now=now, dunning=dunning))

    onboarding.set_flows(session, clock=FrozenClock(launch), flows=flows_as_config(
        [replace(DEFAULT_FLOW, holdout_share=DEMO_HOLDOUT)]))
    _write(ctx, plans, tiers, dunning)
    for key, tier in tiers.items():
        live = sum(1 for p in plans if p.tier == key and p.status in LIVE_STATUSES)
        session.execute(update(MembershipTier).where(MembershipTier.id == tier.id)
                        .values(live_count=live))
    segments.classify_all(session, clock=FrozenClock(now), drop_days=started_drop_days)
    segments.claim_segment_run(session, clock=FrozenClock(now), every=timedelta(0), force=True)
    votes = _poll(ctx)
    renewals = sum(len(p.charges) for p in plans)
    ctx.summary["member login"] = "any demo customer; portal at /membership"
    return f"{len(plans)} members, {renewals} charges, {votes} poll votes"


@demo_step("member-segments", order=990, label="Member segments")
def classify_demo_members(ctx: DemoContext) -> str:
    """Runs after every step: later steps sign members up too (counter sign-ups at the
    pop-ups), and each of them needs its frequency segment like the rest."""
    session, now = ctx.session, ctx.now
    segments.classify_all(session, clock=FrozenClock(now), drop_days=started_drop_days,
                          only_unclassified=True)
    by_segment: dict[str, int] = {}
    live = 0
    for seg, status in session.execute(select(Membership.segment, Membership.status)):
        by_segment[seg or "unclassified"] = by_segment.get(seg or "unclassified", 0) + 1
        live += status in LIVE_STATUSES
    total = sum(by_segment.values())
    ctx.summary["members"] = (f"{live} live of {total} ("
                              + ", ".join(f"{n} {s}" for s, n in sorted(by_segment.items()))
                              + ")")
    return ", ".join(f"{n} {s}" for s, n in sorted(by_segment.items()))


def _purchases(ctx: DemoContext) -> dict[int, list[PurchaseRecord]]:
    families: dict[int, set[str]] = {}
    for order_id, family in ctx.session.execute(
            select(OrderLine.order_id, OrderLine.product_family)):
        families.setdefault(order_id, set()).add(family)
    out: dict[int, list[PurchaseRecord]] = {}
    for order_id, customer_id, at, total in ctx.session.execute(
            select(Order.id, Order.customer_id, Order.created_at, Order.total_amount)):
        out.setdefault(customer_id, []).append(
            PurchaseRecord(at, total, tuple(sorted(families.get(order_id, ())))))
    return out


def _write(ctx: DemoContext, plans: list[PlannedMember], tiers: dict[str, MembershipTier],
           dunning: DunningPolicy) -> None:
    session, now = ctx.session, ctx.now
    if not plans:
        return
    for plan in plans:
        shopper = ctx.ids.customers[plan.customer_id]
        method = MembershipPaymentMethod(
            customer_id=plan.customer_id, provider="demo", token=f"demo_pm_{plan.customer_id}",
            last4=shopper.card_last4, fingerprint=shopper.card_fingerprint,
            created_at=plan.started_at)
        session.add(method)
        session.flush()
        assert plan.period is not None
        tier = tiers[plan.tier]
        live = plan.status in LIVE_STATUSES
        anchor = plan.trial_end if plan.trial_end else plan.started_at
        period = plan.period  # paused: as ``service.pause`` leaves it, the rest banked
        membership = Membership(
            customer_id=plan.customer_id, live_customer_id=plan.customer_id if live else None,
            tier_id=tier.id, status=plan.status, signup_reference=f"demo-{plan.customer_id}",
            payment_method_id=method.id, billing_anchor=anchor, period_index=plan.period_index,
            current_period_start=period[0], current_period_end=period[1],
            trial_end=plan.trial_end, cancel_at_period_end=plan.cancel_at_period_end,
            credit_amount=0, paused_at=plan.paused_at,
            paused_remaining_seconds=plan.paused_remaining, grace_until=plan.grace_until,
            started_at=plan.started_at, ended_at=plan.ended_at, end_reason=plan.end_reason,
            shipping_address=ctx.ids.customers[plan.customer_id].address,
            updated_at=plan.ended_at or now)
        session.add(membership)
        session.flush()
        rows = []
        for charge in plan.charges:
            rows.append({
                "membership_id": membership.id, "kind": charge["kind"],
                "period_start": charge["period_start"], "period_end": charge["period_end"],
                "target_tier_id": None, "amount": charge["amount"], "credit_applied": 0,
                "currency": tier.currency, "status": charge["status"],
                "idempotency_key": service.charge_key(membership.id, charge["kind"],
                                                      charge["period_start"]),
                "attempts": charge["attempts"], "attempt_open": False, "lease_until": None,
                "next_attempt_at": charge.get("next_attempt_at", charge["period_start"]),
                "first_failed_at": charge["first_failed_at"],
                "decline_code": charge["decline_code"],
                "provider_ref": f"demo_ch_{membership.id}_{len(rows)}"
                if charge["status"] is ChargeStatus.succeeded else None,
                "order_id": None, "created_at": charge["period_start"],
                "paid_at": charge["paid_at"]})
        if rows:
            session.execute(insert(MembershipCharge), rows)
        payload = {"membership_id": membership.id, "tier": tier.slug}
        ctx.record_later(at=plan.started_at, type="membership.started",
                         subject_type="membership", subject_id=membership.id,
                         customer_id=plan.customer_id, payload={**payload, "status": "active"})
        if plan.ended_at is not None and plan.end_reason is not None and plan.ended_at <= now:
            ctx.record_later(at=plan.ended_at, type="membership.ended",
                             subject_type="membership", subject_id=membership.id,
                             customer_id=plan.customer_id,
                             payload={**payload, "reason": plan.end_reason.value})
        _onboarding(ctx, membership, plan)


DEMO_HOLDOUT = 0.2


def _onboarding(ctx: DemoContext, membership: Membership, plan: PlannedMember) -> None:
    """One member in five held out of the flow at random (the control group its effect is
    measured against; drawn from the member's own seed, so the rest of the demo's random
    sequence is untouched); for the others, day steps reached so far and the event step
    (first early access) for about 60 % of the members who stayed, 25 % of those who left.
    The demo's retention does not depend on the flow, so its measured effect is about zero:
    what an honest report says of a flow that does nothing."""
    held = random.Random(f"onboarding-{membership.id}").random() < DEMO_HOLDOUT
    ctx.session.add(OnboardingAssignment(membership_id=membership.id, flow=DEFAULT_FLOW.name,
                                         held_out=held, assigned_at=plan.started_at))
    if held:
        return
    stayed = plan.ended_at is None or plan.ended_at > plan.started_at + timedelta(days=60)
    for step in DEFAULT_ONBOARDING:
        if step.day is not None:
            due = plan.started_at + timedelta(days=step.day)
        else:
            if ctx.rng.random() > (0.6 if stayed else 0.25):
                continue
            due = plan.started_at + timedelta(days=ctx.rng.randint(3, 25))
        if due <= ctx.now and (plan.ended_at is None or due < plan.ended_at):
            ctx.session.add(OnboardingProgress(membership_id=membership.id, step_key=step.key,
                                               due_at=due, done_at=due))


def _poll(ctx: DemoContext) -> int:
    session, now = ctx.session, ctx.now
    poll = Poll(question="Which scent should we make next?",
                options=["Vetiver & Smoke", "Yuzu Tea", "Wet Stone"],
                segment=Segment.founding.value, tier_id=None,
                opens_at=now - timedelta(days=5), closes_at=now + timedelta(days=9),
                created_at=now - timedelta(days=5))
    session.add(poll)
    session.flush()
    voters = session.scalars(select(Membership.customer_id).where(
        Membership.segment == Segment.founding.value,
        Membership.status.in_(LIVE_STATUSES)).order_by(Membership.customer_id)).all()
    # Leave one founding member (the first) without a vote, so the portal shows the form.
    rows = [{"poll_id": poll.id, "customer_id": cid, "option_index": ctx.rng.choice([0, 0, 1, 2]),
             "created_at": now - timedelta(hours=ctx.rng.randint(1, 110))}
            for cid in voters[1:] if ctx.rng.random() < 0.7]
    if rows:
        session.execute(insert(PollVote), rows)
    return len(rows)
