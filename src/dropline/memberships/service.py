"""Membership use cases: tiers, the lifecycle (start, change, pause, resume, cancel, end),
waitlists and the notices (on the one mail outbox). Session first, keyword-only arguments;
flush, never commit.

Charging cards is not done here: ``flows`` takes payments between transactions and calls back
into ``settle_*`` below. Every state change that must happen once (a spot taken, a period
advanced, a membership ended) is one conditional UPDATE whose row count decides, so the same
change attempted twice, or by two workers at once, happens once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dropline.catalog.models import Variant
from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.errors import AlreadyExists, InvalidInput, InvalidState, NotFound, OutOfStock
from dropline.events.service import record_event
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipPaymentMethod,
    MembershipTier,
    WaitlistEntry,
)
from dropline.memberships.rules import (
    LIVE_STATUSES,
    EndReason,
    Interval,
    MemberPriceKind,
    MembershipStatus,
    OutOfStockPolicy,
    Proration,
    SubsidyKind,
    next_period,
    period_shift,
    prorate,
    prorate_new_interval,
)
from dropline.money import format_money
from dropline.notifications.service import queue_customer_mail

# ---------------------------------------------------------------------------------- tiers


@dataclass(frozen=True)
class TierSpec:
    slug: str
    name: str
    interval: Interval
    price_amount: int
    currency: str
    description: str = ""
    cap: int | None = None
    trial_days: int = 0
    member_price_kind: MemberPriceKind = MemberPriceKind.none
    member_price_value: int = 0
    early_access_minutes: int = 0
    delivery_subsidy_kind: SubsidyKind = SubsidyKind.none
    delivery_subsidy_amount: int = 0
    consumable_variant_id: int | None = None
    consumable_quantity: int = 0
    out_of_stock_policy: OutOfStockPolicy = OutOfStockPolicy.skip


def create_tier(session: Session, *, clock: Clock, spec: TierSpec) -> MembershipTier:
    if spec.price_amount <= 0:
        raise InvalidInput("a tier's price must be positive", field="price_amount")
    if spec.member_price_kind is MemberPriceKind.percent and not 0 <= spec.member_price_value <= 100:
        raise InvalidInput("a percentage member price lies between 0 and 100",
                           field="member_price_value")
    if (spec.consumable_variant_id is None) != (spec.consumable_quantity == 0):
        raise InvalidInput("an included consumable needs both a variant and a quantity",
                           field="consumable_variant_id")
    if spec.consumable_variant_id is not None:
        variant = session.get(Variant, spec.consumable_variant_id)
        if variant is None:
            raise NotFound(f"variant {spec.consumable_variant_id} not found")
    if session.scalar(select(MembershipTier.id).where(MembershipTier.slug == spec.slug)):
        raise AlreadyExists(f"a tier with slug {spec.slug!r} exists", field="slug")
    tier = MembershipTier(**spec.__dict__, live_count=0, active=True, created_at=clock.now())
    session.add(tier)
    session.flush()
    return tier


def list_tiers(session: Session, *, include_inactive: bool = False) -> list[MembershipTier]:
    query = select(MembershipTier).order_by(MembershipTier.price_amount, MembershipTier.id)
    if not include_inactive:
        query = query.where(MembershipTier.active.is_(True))
    return list(session.scalars(query))


def get_tier(session: Session, tier_id: int) -> MembershipTier:
    tier = session.get(MembershipTier, tier_id)
    if tier is None:
        raise NotFound(f"tier {tier_id} not found")
    return tier


def get_tier_by_slug(session: Session, slug: str) -> MembershipTier:
    tier = session.scalar(select(MembershipTier).where(MembershipTier.slug == slug))
    if tier is None:
        raise NotFound(f"tier {slug!r} not found")
    return tier


def spots_left(tier: MembershipTier) -> int | None:
    return None if tier.cap is None else max(tier.cap - tier.live_count, 0)


def take_spot(session: Session, *, tier_id: int) -> bool:
    """One conditional UPDATE: the cap holds under any interleaving, on both engines."""
    return session.execute(
        update(MembershipTier)
        .where(MembershipTier.id == tier_id,
               (MembershipTier.cap.is_(None)) | (MembershipTier.live_count < MembershipTier.cap))
        .values(live_count=MembershipTier.live_count + 1)
    ).rowcount == 1


def release_spot(session: Session, *, clock: Clock, tier_id: int) -> None:
    session.execute(update(MembershipTier).where(MembershipTier.id == tier_id,
                                                 MembershipTier.live_count > 0)
                    .values(live_count=MembershipTier.live_count - 1))
    tier = get_tier(session, tier_id)
    session.refresh(tier)
    if tier.cap is not None and tier.live_count < tier.cap:
        _tell_waitlist(session, clock=clock, tier=tier)


def join_waitlist(session: Session, *, clock: Clock, tier_id: int,
                  customer_id: int) -> WaitlistEntry:
    tier = get_tier(session, tier_id)
    existing = session.scalar(select(WaitlistEntry).where(
        WaitlistEntry.tier_id == tier.id, WaitlistEntry.customer_id == customer_id))
    if existing is not None:
        return existing
    entry = WaitlistEntry(tier_id=tier.id, customer_id=customer_id, created_at=clock.now())
    session.add(entry)
    session.flush()
    return entry


def waitlist_position(session: Session, *, tier_id: int, customer_id: int) -> int | None:
    entries = session.scalars(select(WaitlistEntry.customer_id).where(
        WaitlistEntry.tier_id == tier_id, WaitlistEntry.notified_at.is_(None))
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)).all()
    return entries.index(customer_id) + 1 if customer_id in entries else None


def _tell_waitlist(session: Session, *, clock: Clock, tier: MembershipTier) -> None:
    """A spot opened: tell the first person waiting (first come, first told; the spot is not
    held, whoever subscribes first takes it)."""
    entry = session.scalar(select(WaitlistEntry).where(
        WaitlistEntry.tier_id == tier.id, WaitlistEntry.notified_at.is_(None))
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id).limit(1))
    if entry is None:
        return
    moved = session.execute(update(WaitlistEntry).where(
        WaitlistEntry.id == entry.id, WaitlistEntry.notified_at.is_(None))
        .values(notified_at=clock.now())).rowcount
    if moved == 1:
        queue_notice(session, clock=clock, customer_id=entry.customer_id, membership_id=None,
                     kind="waitlist-spot", dedupe_key=f"waitlist:{entry.id}",
                     subject=f"A spot opened in {tier.name}",
                     body=f"A spot in {tier.name} has opened. Join at /membership while it "
                          "lasts: the first to subscribe takes it.")


# -------------------------------------------------------------------------------- notices


def queue_notice(session: Session, *, clock: Clock, customer_id: int, membership_id: int | None,
                 kind: str, dedupe_key: str, subject: str, body: str) -> None:
    """A membership notice (receipt, payment failed, final notice, a waitlist spot ...) on the
    one mail outbox, written with the change it reports and sent by the outbox job after
    commit; ``dedupe_key`` makes it exist once however often its cause is retried."""
    queue_customer_mail(session, clock=clock, key=dedupe_key, template="membership_notice",
                        customer_id=customer_id,
                        payload={"kind": kind, "membership_id": membership_id,
                                 "subject": subject[:200], "body": body[:4000]})


# ---------------------------------------------------------------------------- memberships


def get_membership(session: Session, membership_id: int, *,
                   customer_id: int | None = None) -> Membership:
    membership = session.get(Membership, membership_id)
    if membership is None or (customer_id is not None and membership.customer_id != customer_id):
        raise NotFound(f"membership {membership_id} not found")
    return membership


def live_membership(session: Session, *, customer_id: int) -> Membership | None:
    return session.scalar(select(Membership).where(Membership.live_customer_id == customer_id))


def require_live(session: Session, *, customer_id: int) -> Membership:
    membership = live_membership(session, customer_id=customer_id)
    if membership is None:
        raise NotFound("you have no membership; join one at /membership")
    return membership


def latest_membership(session: Session, *, customer_id: int) -> Membership | None:
    return session.scalar(select(Membership).where(Membership.customer_id == customer_id)
                          .order_by(Membership.id.desc()).limit(1))


def save_payment_method(session: Session, *, clock: Clock, customer_id: int, provider: str,
                        token: str, last4: str, fingerprint: str) -> MembershipPaymentMethod:
    method = MembershipPaymentMethod(customer_id=customer_id, provider=provider, token=token,
                                     last4=last4, fingerprint=fingerprint, created_at=clock.now())
    session.add(method)
    session.flush()
    return method


def charge_key(membership_id: int, kind: ChargeKind, period_start: datetime) -> str:
    return f"mship-{membership_id}-{kind.value}-{period_start:%Y%m%dT%H%M%S}"


def _open_charge(session: Session, *, clock: Clock, membership: Membership, kind: ChargeKind,
                 start: datetime, end: datetime, amount: int, currency: str,
                 target_tier_id: int | None = None, credit_applied: int = 0) -> MembershipCharge:
    now = clock.now()
    charge = MembershipCharge(
        membership_id=membership.id, kind=kind, period_start=start, period_end=end,
        target_tier_id=target_tier_id, amount=amount, credit_applied=credit_applied,
        currency=currency,
        status=ChargeStatus.succeeded if amount == 0 else ChargeStatus.pending,
        idempotency_key=charge_key(membership.id, kind, start), attempts=0, attempt_open=False,
        next_attempt_at=now, created_at=now, paid_at=now if amount == 0 else None)
    session.add(charge)
    session.flush()
    return charge


def start_membership(session: Session, *, clock: Clock, customer_id: int, tier: MembershipTier,
                     payment_method_id: int, signup_reference: str,
                     shipping_address: dict[str, Any] | None = None
                     ) -> tuple[Membership, MembershipCharge | None]:
    """Takes a spot and starts a trial (no charge yet) or opens the first period's charge,
    which ``flows.subscribe`` collects. A trial is given once per customer."""
    if session.get(Customer, customer_id) is None:
        raise NotFound("customer not found")
    if not tier.active:
        raise InvalidState(f"{tier.name} is not open to new members")
    if live_membership(session, customer_id=customer_id) is not None:
        raise AlreadyExists("you are already a member; change your tier instead")
    if not take_spot(session, tier_id=tier.id):
        raise OutOfStock(f"{tier.name} is full; join the waitlist to hear when a spot opens",
                         tier=tier.slug, waitlist=True)
    now = clock.now()
    had_trial = session.scalar(select(Membership.id).where(
        Membership.customer_id == customer_id, Membership.trial_end.is_not(None)).limit(1))
    trial = tier.trial_days > 0 and had_trial is None
    end = now + timedelta(days=tier.trial_days) if trial else period_shift(now, tier.interval, 1)
    membership = Membership(
        customer_id=customer_id, live_customer_id=customer_id, tier_id=tier.id,
        status=MembershipStatus.trialing if trial else MembershipStatus.incomplete,
        signup_reference=signup_reference, payment_method_id=payment_method_id,
        billing_anchor=end if trial else now, period_index=-1 if trial else 0,
        current_period_start=now, current_period_end=end, trial_end=end if trial else None,
        cancel_at_period_end=False, credit_amount=0, started_at=now,
        shipping_address=shipping_address or {}, updated_at=now)
    session.add(membership)
    session.flush()
    charge = None
    if not trial:
        charge = _open_charge(session, clock=clock, membership=membership, kind=ChargeKind.signup,
                              start=now, end=end, amount=tier.price_amount,
                              currency=tier.currency)
    else:
        _membership_event(session, clock=clock, membership=membership, tier=tier,
                          type="membership.started")
    return membership, charge


def _membership_event(session: Session, *, clock: Clock, membership: Membership,
                      tier: MembershipTier, type: str, **extra: Any) -> None:
    record_event(session, clock=clock, type=type, subject_type="membership",
                 subject_id=membership.id, customer_id=membership.customer_id,
                 payload={"membership_id": membership.id, "tier": tier.slug,
                          "status": membership.status.value, **extra})


def end_membership(session: Session, *, clock: Clock, membership: Membership,
                   status: MembershipStatus, reason: EndReason,
                   from_statuses: tuple[MembershipStatus, ...]) -> bool:
    """Ends a live membership once (the conditional UPDATE decides), releases its spot and
    voids what it still owed. Returns False if it was not in ``from_statuses`` any more."""
    now = clock.now()
    moved = session.execute(
        update(Membership)
        .where(Membership.id == membership.id, Membership.status.in_(from_statuses))
        .values(status=status, end_reason=reason, ended_at=now, live_customer_id=None,
                cancel_at_period_end=False, updated_at=now)
    ).rowcount
    if moved != 1:
        return False
    session.refresh(membership)
    session.execute(update(MembershipCharge).where(
        MembershipCharge.membership_id == membership.id,
        MembershipCharge.status == ChargeStatus.pending,
        MembershipCharge.attempt_open.is_(False)).values(status=ChargeStatus.void))
    tier = get_tier(session, membership.tier_id)
    release_spot(session, clock=clock, tier_id=tier.id)
    _membership_event(session, clock=clock, membership=membership, tier=tier,
                      type="membership.ended", reason=reason.value)
    return True


def pause(session: Session, *, clock: Clock, customer_id: int,
          resume_at: datetime | None = None) -> Membership:
    """Stops the clock: the rest of the paid period is banked and given back on resume, no
    renewal is charged meanwhile and perks are off. The spot stays held."""
    membership = require_live(session, customer_id=customer_id)
    now = clock.now()
    if membership.status is not MembershipStatus.active:
        raise InvalidState(f"only an active membership can be paused (this one is "
                           f"{membership.status.value})")
    if membership.current_period_end <= now:
        raise InvalidState("this membership is renewing right now; pause it after the renewal")
    if resume_at is not None and resume_at <= now:
        raise InvalidInput("resume_at must be in the future", field="resume_at")
    remaining = int((membership.current_period_end - now).total_seconds())
    moved = session.execute(
        update(Membership).where(Membership.id == membership.id,
                                 Membership.status == MembershipStatus.active)
        .values(status=MembershipStatus.paused, paused_at=now, paused_remaining_seconds=remaining,
                resume_at=resume_at, updated_at=now)).rowcount
    if moved != 1:
        raise InvalidState("the membership changed meanwhile; reload and try again")
    session.refresh(membership)
    tier = get_tier(session, membership.tier_id)
    _membership_event(session, clock=clock, membership=membership, tier=tier,
                      type="membership.paused")
    queue_notice(session, clock=clock, customer_id=customer_id, membership_id=membership.id,
                 kind="paused", dedupe_key=f"paused:{membership.id}:{now:%Y%m%dT%H%M%S}",
                 subject="Your membership is paused",
                 body=f"Your {tier.name} membership is paused. Nothing will be charged until you "
                      f"resume; the {remaining // 86400} days left in your period are kept.")
    return membership


def resume(session: Session, *, clock: Clock, customer_id: int) -> Membership:
    membership = require_live(session, customer_id=customer_id)
    if membership.status is not MembershipStatus.paused:
        raise InvalidState(f"only a paused membership can be resumed (this one is "
                           f"{membership.status.value})")
    return resume_membership(session, clock=clock, membership=membership)


def resume_membership(session: Session, *, clock: Clock, membership: Membership) -> Membership:
    now = clock.now()
    end = now + timedelta(seconds=membership.paused_remaining_seconds or 0)
    # The banked time ends at the new anchor; full periods follow from there.
    moved = session.execute(
        update(Membership).where(Membership.id == membership.id,
                                 Membership.status == MembershipStatus.paused)
        .values(status=MembershipStatus.active, current_period_start=now, current_period_end=end,
                billing_anchor=end, period_index=-1, paused_at=None,
                paused_remaining_seconds=None, resume_at=None, updated_at=now)).rowcount
    if moved != 1:
        raise InvalidState("the membership changed meanwhile; reload and try again")
    session.refresh(membership)
    tier = get_tier(session, membership.tier_id)
    _membership_event(session, clock=clock, membership=membership, tier=tier,
                      type="membership.resumed")
    return membership


def cancel(session: Session, *, clock: Clock, customer_id: int) -> Membership:
    """Cancel at the end of the period (nothing more is charged; perks last until then). A
    member in dunning has nothing paid left, so it ends now."""
    membership = require_live(session, customer_id=customer_id)
    tier = get_tier(session, membership.tier_id)
    if membership.status in (MembershipStatus.past_due, MembershipStatus.incomplete):
        end_membership(session, clock=clock, membership=membership,
                       status=MembershipStatus.canceled, reason=EndReason.voluntary,
                       from_statuses=(membership.status,))
        return membership
    if membership.status is MembershipStatus.paused:
        raise InvalidState("resume the membership first, or let it stay paused")
    if membership.cancel_at_period_end:
        return membership
    membership.cancel_at_period_end = True
    membership.updated_at = clock.now()
    session.flush()
    _membership_event(session, clock=clock, membership=membership, tier=tier,
                      type="membership.cancel_scheduled",
                      ends_at=membership.current_period_end.isoformat())
    queue_notice(session, clock=clock, customer_id=customer_id, membership_id=membership.id,
                 kind="cancel-scheduled",
                 dedupe_key=f"cancel:{membership.id}:{membership.current_period_end:%Y%m%d%H%M%S}",
                 subject="Your membership will end",
                 body=f"Your {tier.name} membership ends on "
                      f"{membership.current_period_end:%d %B %Y}. Nothing more will be charged. "
                      "Changed your mind? Keep it from /membership before then.")
    return membership


def keep(session: Session, *, clock: Clock, customer_id: int) -> Membership:
    """Undo a scheduled cancellation before the period ends."""
    membership = require_live(session, customer_id=customer_id)
    if not membership.cancel_at_period_end:
        return membership
    membership.cancel_at_period_end = False
    membership.updated_at = clock.now()
    session.flush()
    return membership


# ---------------------------------------------------------------------- changing tier


@dataclass(frozen=True)
class ChangePlan:
    membership: Membership
    old_tier: MembershipTier
    new_tier: MembershipTier
    proration: Proration
    restarts_period: bool  # a switch between monthly and annual starts a new period now


def plan_change(session: Session, *, clock: Clock, customer_id: int,
                new_tier_id: int) -> ChangePlan:
    membership = require_live(session, customer_id=customer_id)
    if membership.status not in (MembershipStatus.active, MembershipStatus.trialing):
        raise InvalidState(f"a {membership.status.value} membership cannot change tier; "
                           "resume or settle it first")
    if membership.cancel_at_period_end:
        raise InvalidState("this membership is set to end; keep it before changing tier")
    old, new = get_tier(session, membership.tier_id), get_tier(session, new_tier_id)
    if old.id == new.id:
        raise InvalidInput("that is already your tier", field="tier_id")
    if not new.active:
        raise InvalidState(f"{new.name} is not open to new members")
    if new.currency != old.currency:
        raise InvalidInput("tiers in different currencies cannot be swapped")
    now = clock.now()
    if membership.current_period_end <= now:
        raise InvalidState("this membership is renewing right now; try again in a moment")
    if membership.status is MembershipStatus.trialing:
        # Nothing was paid for the trial: the new tier simply applies, charged at trial end.
        return ChangePlan(membership, old, new, Proration(0, 0, 0), restarts_period=False)
    args = dict(old_price=old.price_amount, new_price=new.price_amount,
                period_start=membership.current_period_start,
                period_end=membership.current_period_end, at=now)
    if old.interval is new.interval:
        return ChangePlan(membership, old, new, prorate(**args), restarts_period=False)
    return ChangePlan(membership, old, new, prorate_new_interval(**args), restarts_period=True)


def begin_change(session: Session, *, clock: Clock, plan: ChangePlan) -> MembershipCharge | None:
    """Takes a spot on the new tier. A change that costs money opens a charge (the tier
    switches once it is paid, in ``settle_change``); one that does not switches now, and a
    negative net is kept as credit against the next renewals."""
    membership, new = plan.membership, plan.new_tier
    pending = session.scalar(select(MembershipCharge.id).where(
        MembershipCharge.membership_id == membership.id,
        MembershipCharge.kind == ChargeKind.change,
        MembershipCharge.status == ChargeStatus.pending))
    if pending is not None:
        raise InvalidState("a tier change is already being paid for")
    if not take_spot(session, tier_id=new.id):
        raise OutOfStock(f"{new.name} is full; join the waitlist to hear when a spot opens",
                         tier=new.slug, waitlist=True)
    now = clock.now()
    if plan.proration.is_charge:
        end = (period_shift(now, new.interval, 1) if plan.restarts_period
               else membership.current_period_end)
        return _open_charge(session, clock=clock, membership=membership, kind=ChargeKind.change,
                            start=now, end=end, amount=plan.proration.net_amount,
                            currency=new.currency, target_tier_id=new.id)
    apply_tier_change(session, clock=clock, membership=membership, old_tier=plan.old_tier,
                      new_tier=new, restarts_period=plan.restarts_period,
                      credit=-plan.proration.net_amount)
    return None


def apply_tier_change(session: Session, *, clock: Clock, membership: Membership,
                      old_tier: MembershipTier, new_tier: MembershipTier,
                      restarts_period: bool, credit: int = 0) -> None:
    now = clock.now()
    values: dict[str, Any] = {"tier_id": new_tier.id, "updated_at": now,
                              "credit_amount": Membership.credit_amount + credit}
    if restarts_period:
        values.update(billing_anchor=now, period_index=0, current_period_start=now,
                      current_period_end=period_shift(now, new_tier.interval, 1))
    session.execute(update(Membership).where(Membership.id == membership.id).values(**values))
    session.refresh(membership)
    release_spot(session, clock=clock, tier_id=old_tier.id)
    _membership_event(session, clock=clock, membership=membership, tier=new_tier,
                      type="membership.tier_changed", from_tier=old_tier.slug,
                      credit_amount=credit)
    queue_notice(session, clock=clock, customer_id=membership.customer_id,
                 membership_id=membership.id, kind="tier-changed",
                 dedupe_key=f"tier:{membership.id}:{now:%Y%m%dT%H%M%S%f}",
                 subject=f"You are now in {new_tier.name}",
                 body=f"Your membership moved from {old_tier.name} to {new_tier.name}."
                      + (f" {format_money(credit, new_tier.currency)} of unused time is credited "
                         "to your next renewals." if credit else ""))


# ---------------------------------------------------------------------------- renewals


def open_renewal(session: Session, *, clock: Clock, membership: Membership
                 ) -> MembershipCharge | None:
    """The charge for the period after the current one, opened once (the unique constraint on
    (membership, kind, period start) decides between two workers). Account credit is spent
    first, by a conditional UPDATE. Returns None if it exists already."""
    tier = get_tier(session, membership.tier_id)
    start, end = next_period(membership.billing_anchor, tier.interval, membership.period_index)
    if session.scalar(select(MembershipCharge.id).where(
            MembershipCharge.membership_id == membership.id,
            MembershipCharge.kind == ChargeKind.renewal,
            MembershipCharge.period_start == start)) is not None:
        return None
    credit = min(membership.credit_amount, tier.price_amount)
    if credit:
        spent = session.execute(update(Membership).where(
            Membership.id == membership.id, Membership.credit_amount >= credit)
            .values(credit_amount=Membership.credit_amount - credit)).rowcount
        credit = credit if spent == 1 else 0
    return _open_charge(session, clock=clock, membership=membership, kind=ChargeKind.renewal,
                        start=start, end=end, amount=tier.price_amount - credit,
                        currency=tier.currency, credit_applied=credit)


def advance_period(session: Session, *, clock: Clock, charge: MembershipCharge) -> bool:
    """A paid renewal moves the membership into the charge's period, once: only while the
    membership's period still ends where the charge's begins."""
    now = clock.now()
    return session.execute(
        update(Membership).where(Membership.id == charge.membership_id,
                                 Membership.current_period_end == charge.period_start,
                                 Membership.status.in_(LIVE_STATUSES))
        .values(current_period_start=charge.period_start, current_period_end=charge.period_end,
                period_index=Membership.period_index + 1, status=MembershipStatus.active,
                grace_until=None, updated_at=now)
    ).rowcount == 1


def customers_emails(session: Session, customer_ids: list[int]) -> dict[int, str]:
    if not customer_ids:
        return {}
    return dict(session.execute(select(Customer.id, Customer.email)
                                .where(Customer.id.in_(customer_ids))).all())


def count_live(session: Session, *, tier_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Membership).where(
        Membership.tier_id == tier_id, Membership.status.in_(LIVE_STATUSES))) or 0
