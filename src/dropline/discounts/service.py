"""Discount codes: create, read, withdraw; and, inside a checkout's transaction, price a cart
with a code (``price_with_code``), take a use of it (``take_use``, ``record_redemption``) and give the use back when the
payment fails (``release``). Services flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.discounts.errors import (
    DiscountCapReached,
    DiscountCustomerCapReached,
    DiscountUnknown,
)
from dropline.discounts.models import DiscountCode, DiscountRedemption
from dropline.discounts.rules import (
    FIELD,
    Applied,
    CodeTerms,
    DiscountKind,
    LineFacts,
    Stacking,
    apply_code,
    check_live,
    check_terms,
    normalise_code,
)
from dropline.errors import AlreadyExists, InvalidInput, NotFound

__all__ = [
    "CodeSpec",
    "create_code",
    "disable_code",
    "get_code",
    "list_codes",
    "lookup_code",
    "price_with_code",
    "record_redemption",
    "redemption_of",
    "release",
    "take_use",
    "terms_of",
]


@dataclass(frozen=True)
class CodeSpec:
    code: str
    kind: DiscountKind
    currency: str
    percent: int = 0
    amount: int = 0
    description: str = ""
    product_ids: Sequence[int] = ()
    family_slugs: Sequence[str] = ()
    drop_ids: Sequence[int] = ()
    tier_slugs: Sequence[str] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_uses: int | None = None
    max_uses_per_customer: int | None = None
    stacking: Stacking = Stacking.with_member_price


def terms_of(code: DiscountCode) -> CodeTerms:
    scope: dict[str, Any] = code.scope or {}
    return CodeTerms(
        code=code.code, kind=code.kind, percent=code.percent, amount=code.amount,
        currency=code.currency, product_ids=frozenset(scope.get("product_ids", ())),
        family_slugs=frozenset(scope.get("family_slugs", ())),
        drop_ids=frozenset(scope.get("drop_ids", ())),
        tier_slugs=frozenset(scope.get("tier_slugs", ())), starts_at=code.starts_at,
        ends_at=code.ends_at, stacking=code.stacking, disabled=code.disabled_at is not None)


def create_code(session: Session, *, clock: Clock, spec: CodeSpec) -> DiscountCode:
    code_text = normalise_code(spec.code)
    for name, cap in (("max_uses", spec.max_uses),
                      ("max_uses_per_customer", spec.max_uses_per_customer)):
        if cap is not None and cap < 1:
            raise InvalidInput(f"{name} must be at least 1 (or left out for no cap)", field=name)
    code = DiscountCode(
        code=code_text, description=spec.description, kind=spec.kind,
        percent=spec.percent if spec.kind is DiscountKind.percentage else 0,
        amount=spec.amount if spec.kind is DiscountKind.fixed else 0, currency=spec.currency,
        scope={"product_ids": sorted(set(spec.product_ids)),
               "family_slugs": sorted(set(spec.family_slugs)),
               "drop_ids": sorted(set(spec.drop_ids)),
               "tier_slugs": sorted(set(spec.tier_slugs))},
        stacking=spec.stacking, starts_at=spec.starts_at, ends_at=spec.ends_at,
        max_uses=spec.max_uses, max_uses_per_customer=spec.max_uses_per_customer, uses=0,
        created_at=clock.now())
    check_terms(terms_of(code))
    if session.scalar(select(DiscountCode.id).where(DiscountCode.code == code_text)):
        raise AlreadyExists(f"the code {code_text} already exists", field="code")
    session.add(code)
    session.flush()
    return code


def get_code(session: Session, code_id: int) -> DiscountCode:
    code = session.get(DiscountCode, code_id)
    if code is None:
        raise NotFound(f"discount code {code_id} not found")
    return code


def lookup_code(session: Session, code: str) -> DiscountCode:
    """The code a shopper typed (any case); DiscountUnknown when there is none."""
    found = session.scalar(select(DiscountCode).where(
        DiscountCode.code == normalise_code(code)[:32]))
    if found is None:
        raise DiscountUnknown(f"there is no discount code {normalise_code(code)[:32]!r}",
                              field=FIELD)
    return found


def list_codes(session: Session, *, limit: int = 100, offset: int = 0) -> list[DiscountCode]:
    return list(session.scalars(select(DiscountCode).order_by(DiscountCode.id.desc())
                                .limit(limit).offset(offset)))


def disable_code(session: Session, *, clock: Clock, code_id: int) -> DiscountCode:
    """Withdraws a code: no new checkout can use it; orders that used it keep their price."""
    code = get_code(session, code_id)
    if code.disabled_at is None:
        code.disabled_at = clock.now()
        session.flush()
    return code


def customer_uses(session: Session, *, discount_id: int, customer_id: int) -> int:
    return session.scalar(select(func.count()).select_from(DiscountRedemption).where(
        DiscountRedemption.discount_id == discount_id,
        DiscountRedemption.customer_id == customer_id)) or 0


def price_with_code(session: Session, *, code: str, lines: Sequence[LineFacts], currency: str,
                    tier_slug: str | None, customer_id: int, at: datetime
                    ) -> tuple[DiscountCode, Applied]:
    """What the code does to these lines now, or why it cannot (a read: no use is taken).
    The caps are checked too, so a quote says 'used up' before the shopper pays; the checkout
    takes the use itself with ``take_use``, which is what holds the caps under concurrency."""
    found = lookup_code(session, code)
    terms = terms_of(found)
    check_live(terms, at)
    applied = apply_code(terms, lines, currency=currency, tier_slug=tier_slug)
    if found.max_uses is not None and found.uses >= found.max_uses:
        raise DiscountCapReached(f"the code {found.code} has been used up", field=FIELD)
    if found.max_uses_per_customer is not None and customer_uses(
            session, discount_id=found.id, customer_id=customer_id
    ) >= found.max_uses_per_customer:
        raise DiscountCustomerCapReached(
            f"you have used the code {found.code} {found.max_uses_per_customer} time(s), as "
            "often as it allows", field=FIELD)
    return found, applied


def take_use(session: Session, *, discount_id: int, customer_id: int) -> None:
    """Takes one use of the code for a checkout, in the checkout's transaction.

    The total cap is one conditional UPDATE of the counter (its row count decides), so it
    holds on both engines. On PostgreSQL that UPDATE also locks the code's row until commit,
    so the per-customer count read after it sees every redemption committed before (READ
    COMMITTED takes a fresh snapshot per statement); on SQLite writers are serialised. A
    refusal raises, and the caller's transaction (the whole order) rolls back, use included;
    the caller writes the redemption (``record_redemption``) once the order exists."""
    taken = session.execute(
        update(DiscountCode)
        .where(DiscountCode.id == discount_id,
               (DiscountCode.max_uses.is_(None)) | (DiscountCode.uses < DiscountCode.max_uses))
        .values(uses=DiscountCode.uses + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    code = session.get(DiscountCode, discount_id)
    assert code is not None
    if taken != 1:
        raise DiscountCapReached(f"the code {code.code} has been used up", field=FIELD)
    if code.max_uses_per_customer is not None and customer_uses(
            session, discount_id=discount_id, customer_id=customer_id
    ) >= code.max_uses_per_customer:
        raise DiscountCustomerCapReached(
            f"you have used the code {code.code} {code.max_uses_per_customer} time(s), as "
            "often as it allows", field=FIELD)


def record_redemption(session: Session, *, clock: Clock, discount_id: int, customer_id: int,
                      order_id: int, discount_amount: int, delivery_discount_amount: int
                      ) -> DiscountRedemption:
    """The order's use of the code taken by ``take_use`` in this transaction, and what the
    code took off (goods and delivery)."""
    redemption = DiscountRedemption(
        discount_id=discount_id, customer_id=customer_id, order_id=order_id,
        discount_amount=discount_amount, delivery_discount_amount=delivery_discount_amount,
        created_at=clock.now())
    session.add(redemption)
    session.flush()
    return redemption


def redemption_of(session: Session, order_id: int) -> DiscountRedemption | None:
    return session.scalar(select(DiscountRedemption).where(
        DiscountRedemption.order_id == order_id))


def release(session: Session, *, order_id: int) -> None:
    """Gives an order's use of its code back (its payment failed); a no-op without one."""
    redemption = redemption_of(session, order_id)
    if redemption is None:
        return
    session.execute(update(DiscountCode)
                    .where(DiscountCode.id == redemption.discount_id, DiscountCode.uses > 0)
                    .values(uses=DiscountCode.uses - 1)
                    .execution_options(synchronize_session=False))
    session.delete(redemption)
    session.flush()
