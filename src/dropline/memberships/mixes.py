"""A consumable tier's rotating mix (its pool, size and no-repeat window) and a member's
preferences for it; the choice itself is ``mix_rules.choose_mix``, made at each paid period
(``flows._send_consumable``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.catalog.models import Variant
from dropline.errors import InvalidInput
from dropline.memberships import service
from dropline.memberships.mix_rules import validate_pool
from dropline.memberships.models import MembershipTier

__all__ = ["mix_of", "set_mix_preferences", "set_tier_mix"]


def _variant_ids(session: Session, skus: Sequence[str]) -> list[int]:
    found = dict(session.execute(select(Variant.sku, Variant.id)
                                 .where(Variant.sku.in_(list(skus)))).all())
    unknown = [sku for sku in skus if sku not in found]
    if unknown:
        raise InvalidInput(f"unknown SKU(s): {', '.join(unknown)}", field="pool")
    return [found[sku] for sku in skus]


def set_tier_mix(session: Session, *, tier: MembershipTier, skus: Sequence[str], size: int,
                 no_repeat: int) -> MembershipTier:
    """Makes the tier ship a rotating mix of ``size`` from these SKUs each period, none
    repeated to a member within ``no_repeat`` periods; ``size`` 0 turns the mix off (the tier
    ships its one consumable variant again, if it has one)."""
    if size == 0:
        tier.mix_pool, tier.mix_size, tier.mix_no_repeat = [], 0, 0
        session.flush()
        return tier
    pool = _variant_ids(session, skus)
    validate_pool(pool, size=size, no_repeat=no_repeat)
    tier.mix_pool, tier.mix_size, tier.mix_no_repeat = pool, size, no_repeat
    session.flush()
    return tier


def mix_of(session: Session, tier: MembershipTier) -> dict[str, Any]:
    skus = dict(session.execute(select(Variant.id, Variant.sku)
                                .where(Variant.id.in_(tier.mix_pool or []))).all())
    return {"tier": tier.slug, "size": tier.mix_size, "no_repeat": tier.mix_no_repeat,
            "pool": [skus.get(v, str(v)) for v in tier.mix_pool or []]}


def set_mix_preferences(session: Session, *, customer_id: int, prefer: Sequence[str],
                        avoid: Sequence[str]) -> dict[str, list[str]]:
    """The member's say in their tier's mix: SKUs of its pool to get first, or to avoid
    (honoured while the pool allows; the no-repeat rule comes first)."""
    membership = service.require_live(session, customer_id=customer_id)
    tier = service.get_tier(session, membership.tier_id)
    if tier.mix_size == 0:
        raise InvalidInput("your tier does not ship a mix", field="prefer")
    if set(prefer) & set(avoid):
        raise InvalidInput("a SKU cannot be both preferred and avoided", field="avoid")
    prefer_ids, avoid_ids = _variant_ids(session, prefer), _variant_ids(session, avoid)
    outside = [sku for sku, v in zip([*prefer, *avoid], [*prefer_ids, *avoid_ids], strict=True)
               if v not in tier.mix_pool]
    if outside:
        raise InvalidInput(f"not in your tier's mix: {', '.join(outside)}", field="prefer")
    membership.mix_preferences = {"prefer": prefer_ids, "avoid": avoid_ids}
    session.flush()
    return {"prefer": list(prefer), "avoid": list(avoid)}
