from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK
from dropline.memberships.rules import (
    EndReason,
    Interval,
    MemberPriceKind,
    MembershipStatus,
    OutOfStockPolicy,
    SubsidyKind,
)


def _enum(kind: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(kind, native_enum=False, length=length,
                values_callable=lambda members: [m.value for m in members])


class MembershipTier(Base):
    """A tier and its perks. ``live_count`` counts the memberships holding a spot (every live
    status); with a ``cap`` it only rises by one conditional UPDATE (``live_count < cap``)."""

    __tablename__ = "membership_tiers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(1000), default="")
    interval: Mapped[Interval] = mapped_column(_enum(Interval))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    cap: Mapped[int | None]
    live_count: Mapped[int] = mapped_column(default=0)
    trial_days: Mapped[int] = mapped_column(default=0)
    member_price_kind: Mapped[MemberPriceKind] = mapped_column(_enum(MemberPriceKind))
    member_price_value: Mapped[int] = mapped_column(BigInteger, default=0)
    early_access_minutes: Mapped[int] = mapped_column(default=0)
    delivery_subsidy_kind: Mapped[SubsidyKind] = mapped_column(_enum(SubsidyKind))
    delivery_subsidy_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # A utility tier sends this variant every cycle (an order at no charge).
    consumable_variant_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("variants.id"))
    consumable_quantity: Mapped[int] = mapped_column(default=0)
    # A rotating mix instead (``mix_rules``): ``mix_size`` variants a period from this pool,
    # none repeated to a member within ``mix_no_repeat`` periods. mix_size 0: no mix.
    mix_pool: Mapped[list[int]] = mapped_column(JSON, default=list, server_default="[]")
    mix_size: Mapped[int] = mapped_column(default=0, server_default="0")
    mix_no_repeat: Mapped[int] = mapped_column(default=0, server_default="0")
    out_of_stock_policy: Mapped[OutOfStockPolicy] = mapped_column(_enum(OutOfStockPolicy))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("price_amount > 0", name="price_positive"),
        CheckConstraint("cap IS NULL OR (cap >= 0 AND live_count <= cap)", name="within_cap"),
        CheckConstraint("live_count >= 0", name="live_count_non_negative"),
        CheckConstraint("trial_days >= 0 AND early_access_minutes >= 0 AND "
                        "member_price_value >= 0 AND delivery_subsidy_amount >= 0 AND "
                        "consumable_quantity >= 0", name="perks_non_negative"),
    )


class MembershipPaymentMethod(Base):
    """A saved card: the provider's token plus what may be shown (last4) or linked
    (fingerprint). Never the number."""

    __tablename__ = "membership_payment_methods"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Membership(Base):
    """One customer's membership of one tier, from sign-up to its end.

    Billing periods follow ``billing_anchor``: period ``i`` runs from anchor + i intervals to
    anchor + i+1 (``rules.next_period``); -1 means the current stretch (a trial, or the rest of
    a period banked by a pause) ends at the anchor. ``live_customer_id`` equals
    ``customer_id`` while the membership is live and is NULL once it ends: its unique
    constraint allows one live membership per customer on both engines."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    live_customer_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    tier_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("membership_tiers.id"),
                                         index=True)
    status: Mapped[MembershipStatus] = mapped_column(_enum(MembershipStatus))
    # One membership per sign-up attempt (derived from the Idempotency-Key, or the form's key).
    signup_reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    payment_method_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("membership_payment_methods.id"))
    billing_anchor: Mapped[datetime]
    period_index: Mapped[int] = mapped_column(default=0)
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime] = mapped_column(index=True)
    trial_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    credit_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    paused_at: Mapped[datetime | None]
    paused_remaining_seconds: Mapped[int | None] = mapped_column(BigInteger)
    resume_at: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]  # past-due: lapses at this time
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[EndReason | None] = mapped_column(_enum(EndReason))
    segment: Mapped[str | None] = mapped_column(String(16))
    segment_reason: Mapped[str] = mapped_column(String(300), default="")
    segment_computed_at: Mapped[datetime | None]
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The member's say in a rotating mix: {"prefer": [variant ids], "avoid": [variant ids]}.
    mix_preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict,
                                                            server_default="{}")
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("credit_amount >= 0", name="credit_non_negative"),
        Index("ix_memberships_status_period_end", "status", "current_period_end"),
    )


class ChargeKind(enum.StrEnum):
    signup = "signup"
    renewal = "renewal"
    change = "change"  # a prorated upgrade


class ChargeStatus(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"  # every attempt declined
    void = "void"  # no longer owed (the membership ended)


class MembershipCharge(Base):
    """A sum owed for a membership and every attempt to collect it.

    ``idempotency_key`` is derived from the membership and the period (``mship-12-renewal-
    20260401T100000``); attempt ``n`` is sent to the provider as ``<key>:<n>``, so a retry of
    a crashed attempt replays the provider's answer and a new dunning attempt is a new request.
    An attempt is claimed by one conditional UPDATE (``attempt_open`` false -> true, or an
    expired lease), so two workers never send the same attempt and never run two at once."""

    __tablename__ = "membership_charges"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    membership_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("memberships.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ChargeKind] = mapped_column(_enum(ChargeKind))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    target_tier_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("membership_tiers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    credit_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[ChargeStatus] = mapped_column(_enum(ChargeStatus))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    attempt_open: Mapped[bool] = mapped_column(default=False)
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    first_failed_at: Mapped[datetime | None]
    decline_code: Mapped[str | None] = mapped_column(String(64))
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"))
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("membership_id", "kind", "period_start"),
        CheckConstraint("amount >= 0 AND credit_applied >= 0", name="amounts_non_negative"),
    )


class WaitlistEntry(Base):
    __tablename__ = "membership_waitlist"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    tier_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("membership_tiers.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"))
    created_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("tier_id", "customer_id"),)


class OnboardingProgress(Base):
    __tablename__ = "membership_onboarding"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    membership_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("memberships.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    done_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("membership_id", "step_key"),)


class OnboardingAssignment(Base):
    """Which onboarding flow a member got, or that they were held out of it (the control
    group its effect is measured against): drawn once, at random, when the flow first sees
    them, and never changed."""

    __tablename__ = "membership_onboarding_assignments"

    membership_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("memberships.id", ondelete="CASCADE"), primary_key=True)
    flow: Mapped[str] = mapped_column(String(40))
    held_out: Mapped[bool]
    assigned_at: Mapped[datetime]


class Poll(Base):
    """A question for founding members (``segment``) or for one tier's members (``tier_id``)."""

    __tablename__ = "membership_polls"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    question: Mapped[str] = mapped_column(String(300))
    options: Mapped[list[str]] = mapped_column(JSON)
    segment: Mapped[str | None] = mapped_column(String(16))
    tier_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("membership_tiers.id"))
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    created_at: Mapped[datetime]


class PollVote(Base):
    __tablename__ = "membership_poll_votes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    poll_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("membership_polls.id", ondelete="CASCADE"))
    # Per customer, not per membership: leaving and re-joining gives no second vote.
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"))
    option_index: Mapped[int]
    created_at: Mapped[datetime]

    # One vote per member, enforced by the database whatever the interleaving.
    __table_args__ = (UniqueConstraint("poll_id", "customer_id"),
                      CheckConstraint("option_index >= 0", name="option_non_negative"))


class MembershipSetting(Base):
    """Settings the brand changes at run time (segment thresholds, the onboarding steps), and
    the jobs' own bookkeeping (when segments were last recomputed)."""

    __tablename__ = "membership_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]
