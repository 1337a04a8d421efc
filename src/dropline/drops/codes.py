"""Discount codes on drop purchases, by the checkout's rules (``discounts.rules``): a code
covers a drop's line when its scope names that drop, the product or its family (or nothing);
a tier-scoped code needs the buyer's tier now. Drops sell at their listed price (no member
price), so "stacking with member prices" leaves the listed price as the base.

Shared by the database path (``drops.flows``) and the batch writer (``drops.crowd.writer``),
so one purchase is priced the same whichever engine writes it. The use itself is taken by
``discounts.service.take_use`` (one conditional UPDATE) in the order's transaction, after the
buyer's count and before the slot rows (the lock order of both paths)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from dropline.catalog.models import Product, ProductFamily, Variant
from dropline.discounts import service as discounts
from dropline.discounts.models import DiscountCode
from dropline.discounts.rules import Applied, LineFacts
from dropline.memberships.perks import active_tier

__all__ = ["DropLine", "price_drop_code"]

DropLine = tuple[Variant, Product, ProductFamily, int]  # what is bought, and how many


def price_drop_code(session: Session, *, code: str, drop_id: int, customer_id: int,
                    currency: str, lines: Sequence[DropLine], at: datetime
                    ) -> tuple[DiscountCode, Applied]:
    """What ``code`` takes off these drop lines (in order), or its refusal raised (unknown,
    not started, expired, not applicable, used up: ``discounts.errors``, each naming the
    field ``discount_code``). A read: no use is taken."""
    tier = active_tier(session, customer_id=customer_id, at=at)
    return discounts.price_with_code(
        session, code=code, currency=currency, customer_id=customer_id, at=at,
        tier_slug=tier.slug if tier is not None else None,
        lines=[LineFacts(variant_id=variant.id, product_id=product.id,
                         family_slug=family.slug, drop_ids=frozenset({drop_id}),
                         quantity=quantity, list_unit_amount=variant.price_amount,
                         member_unit_amount=variant.price_amount)
               for variant, product, family, quantity in lines])
