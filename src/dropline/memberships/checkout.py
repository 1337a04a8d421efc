"""Memberships' part of the checkout policy (``orders.policy.CheckoutPolicy``): the price a
member pays, and the facts delivery pricing needs (is this shopper a member, which delivery
subsidy applies). Pure reads over ``memberships.perks``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from dropline.memberships import perks
from dropline.memberships.perks import DeliverySubsidy
from dropline.memberships.rules import SubsidyKind

__all__ = ["DeliveryPerks", "MemberCheckout"]


@dataclass(frozen=True)
class DeliveryPerks:
    is_member: bool
    subsidy: DeliverySubsidy

    @property
    def has_subsidy(self) -> bool:
        return self.subsidy.kind is not SubsidyKind.none


class MemberCheckout:
    """What the checkout asks of memberships; decided on the server, never in the page."""

    def member_price(self, session: Session, *, customer_id: int, variant_id: int,
                     base_amount: int, at: datetime) -> int:
        return perks.member_price(session, customer_id=customer_id, variant_id=variant_id,
                                  base_amount=base_amount, at=at)

    def delivery_perks(self, session: Session, *, customer_id: int,
                       at: datetime) -> DeliveryPerks:
        subsidy = perks.delivery_subsidy(session, customer_id=customer_id, at=at)
        member = perks.active_tier(session, customer_id=customer_id, at=at) is not None
        return DeliveryPerks(is_member=member, subsidy=subsidy)

    def tier_slug(self, session: Session, *, customer_id: int, at: datetime) -> str | None:
        """The slug of the tier whose perks this customer has now (None: not a member)."""
        tier = perks.active_tier(session, customer_id=customer_id, at=at)
        return tier.slug if tier is not None else None
