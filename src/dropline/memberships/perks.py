"""What a membership gives elsewhere in the shop: the interface the drop engine, the cart and
delivery pricing call. Pure reads: session first, nothing written.

    active_tier(session, customer_id=, at=)                    -> MembershipTier | None
    early_access_minutes(session, customer_id=, at=)           -> int (0 for non-members)
    early_access_members(session, at=)                         -> {customer id: minutes}
    member_price(session, customer_id=, variant_id=, base_amount=, at=) -> int
    delivery_subsidy(session, customer_id=, at=)               -> DeliverySubsidy

A member has perks while trialing, active, or past due (inside dunning's grace); not while
paused, and not once the membership has ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import ensure_utc
from dropline.memberships.models import Membership, MembershipTier
from dropline.memberships.rules import PERK_STATUSES, SubsidyKind, member_unit_price


@dataclass(frozen=True)
class DeliverySubsidy:
    kind: SubsidyKind  # none | free | discount
    amount: int = 0  # minor units off the delivery price when kind is discount

    def apply(self, delivery_amount: int) -> int:
        """The delivery price the member pays."""
        if self.kind is SubsidyKind.free:
            return 0
        if self.kind is SubsidyKind.discount:
            return max(0, delivery_amount - self.amount)
        return delivery_amount


NO_SUBSIDY = DeliverySubsidy(SubsidyKind.none, 0)


def active_tier(session: Session, *, customer_id: int, at: datetime) -> MembershipTier | None:
    at = ensure_utc(at)
    row = session.execute(
        select(Membership, MembershipTier)
        .join(MembershipTier, MembershipTier.id == Membership.tier_id)
        .where(Membership.live_customer_id == customer_id,
               Membership.status.in_(PERK_STATUSES))).first()
    if row is None:
        return None
    membership, tier = row
    if membership.started_at > at:
        return None
    return tier


def early_access_minutes(session: Session, *, customer_id: int, at: datetime) -> int:
    tier = active_tier(session, customer_id=customer_id, at=at)
    return tier.early_access_minutes if tier is not None else 0


def early_access_members(session: Session, *, at: datetime) -> dict[int, int]:
    """Every member with early access at ``at`` and their tier's lead in minutes (for the
    "early access open" mail); the same members ``early_access_minutes`` answers for."""
    at = ensure_utc(at)
    rows = session.execute(
        select(Membership.live_customer_id, MembershipTier.early_access_minutes)
        .join(MembershipTier, MembershipTier.id == Membership.tier_id)
        .where(Membership.live_customer_id.is_not(None),
               Membership.status.in_(PERK_STATUSES), Membership.started_at <= at,
               MembershipTier.early_access_minutes > 0))
    return {int(customer_id): int(minutes) for customer_id, minutes in rows}


def member_price(session: Session, *, customer_id: int, variant_id: int, base_amount: int,
                 at: datetime) -> int:
    """The unit price this customer pays for ``variant_id`` whose list price is
    ``base_amount`` (minor units). ``variant_id`` is the hook for per-product exclusions."""
    tier = active_tier(session, customer_id=customer_id, at=at)
    if tier is None:
        return base_amount
    return member_unit_price(base_amount, kind=tier.member_price_kind,
                             value=tier.member_price_value)


def delivery_subsidy(session: Session, *, customer_id: int, at: datetime) -> DeliverySubsidy:
    tier = active_tier(session, customer_id=customer_id, at=at)
    if tier is None or tier.delivery_subsidy_kind is SubsidyKind.none:
        return NO_SUBSIDY
    return DeliverySubsidy(tier.delivery_subsidy_kind, tier.delivery_subsidy_amount
                           if tier.delivery_subsidy_kind is SubsidyKind.discount else 0)
