"""Pure discount-code rules: is a code live now, which cart lines it covers, and what it takes
off each line. No session, no clock: callers pass the time and the facts.

Kinds: ``percentage`` (whole percent off the covered lines), ``fixed`` (an amount off the
covered lines, never more than they cost, shared between them in proportion to their value)
and ``free-delivery`` (delivery costs nothing; prices are untouched).

Scope: a code may name products, product families, drops (the variants on sale in those drops)
and membership tiers. Each named dimension must match: a line is covered when it matches every
product/family/drop list the code names (an empty list matches all), and a code naming tiers
applies only to members of one of them.

Stacking with member prices, one rule per code:

- ``with-member-price``: the code comes off the member's price (members get both).
- ``instead-of-member-price``: covered lines are priced at the listed price and the code comes
  off that; lines the code does not cover keep the member price. If the member price saves the
  shopper at least as much on the covered lines, the code is refused
  (``discount-not-better-than-member-price``), so a shopper is never charged more for using a
  code than without it. Free delivery touches no price, so it always stacks.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dropline.discounts.errors import (
    DiscountDisabled,
    DiscountExpired,
    DiscountNotApplicable,
    DiscountNotBetter,
    DiscountNotStarted,
)
from dropline.errors import InvalidInput
from dropline.pricing import proportional_share

__all__ = [
    "FIELD",
    "Applied",
    "CodeTerms",
    "DiscountKind",
    "LineFacts",
    "Stacking",
    "apply_code",
    "check_live",
    "check_terms",
    "normalise_code",
]

FIELD = "discount_code"  # the field a refusal names, so a form shows it beside the code


class DiscountKind(enum.StrEnum):
    percentage = "percentage"
    fixed = "fixed"
    free_delivery = "free-delivery"


class Stacking(enum.StrEnum):
    with_member_price = "with-member-price"
    instead_of_member_price = "instead-of-member-price"


def normalise_code(code: str) -> str:
    """Codes are matched case-insensitively and without surrounding spaces."""
    return code.strip().upper()


@dataclass(frozen=True)
class CodeTerms:
    code: str
    kind: DiscountKind
    percent: int = 0  # percentage: 1..100
    amount: int = 0  # fixed: minor units of ``currency``
    currency: str = "GBP"
    product_ids: frozenset[int] = frozenset()
    family_slugs: frozenset[str] = frozenset()
    drop_ids: frozenset[int] = frozenset()
    tier_slugs: frozenset[str] = frozenset()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    stacking: Stacking = Stacking.with_member_price
    disabled: bool = False


@dataclass(frozen=True)
class LineFacts:
    """A cart line as the code sees it: what it is, and its listed and member unit prices."""

    variant_id: int
    product_id: int
    family_slug: str
    drop_ids: frozenset[int]
    quantity: int
    list_unit_amount: int
    member_unit_amount: int


@dataclass(frozen=True)
class Applied:
    """What the code does to the cart: per line (in the order given) the unit price charged
    and the discount on the line; and whether delivery is free."""

    unit_amounts: tuple[int, ...]
    line_discounts: tuple[int, ...]
    free_delivery: bool

    @property
    def discount_amount(self) -> int:
        return sum(self.line_discounts)


def check_terms(terms: CodeTerms) -> None:
    """A code's terms make sense (on create): raises InvalidInput naming the field."""
    if not terms.code or len(terms.code) > 32 or not all(
            c.isalnum() or c in "-_" for c in terms.code):
        raise InvalidInput("a code is 1 to 32 letters, digits, '-' or '_'", field="code")
    if terms.kind is DiscountKind.percentage and not 1 <= terms.percent <= 100:
        raise InvalidInput("a percentage code takes 1 to 100 percent off", field="percent")
    if terms.kind is DiscountKind.fixed and terms.amount <= 0:
        raise InvalidInput("a fixed code takes a positive amount off", field="amount")
    if terms.starts_at and terms.ends_at and terms.ends_at <= terms.starts_at:
        raise InvalidInput("the code must end after it starts", field="ends_at")


def check_live(terms: CodeTerms, at: datetime) -> None:
    """Raises why the code cannot be used at ``at`` (withdrawn, not started, expired)."""
    if terms.disabled:
        raise DiscountDisabled(f"the code {terms.code} has been withdrawn", field=FIELD)
    if terms.starts_at is not None and at < terms.starts_at:
        raise DiscountNotStarted(f"the code {terms.code} can be used from "
                                 f"{terms.starts_at:%Y-%m-%d %H:%M} UTC", field=FIELD,
                                 starts_at=terms.starts_at.isoformat())
    if terms.ends_at is not None and at >= terms.ends_at:
        raise DiscountExpired(f"the code {terms.code} expired on "
                              f"{terms.ends_at:%Y-%m-%d %H:%M} UTC", field=FIELD,
                              ends_at=terms.ends_at.isoformat())


def _covers(terms: CodeTerms, line: LineFacts) -> bool:
    return ((not terms.product_ids or line.product_id in terms.product_ids)
            and (not terms.family_slugs or line.family_slug in terms.family_slugs)
            and (not terms.drop_ids or bool(line.drop_ids & terms.drop_ids)))


def apply_code(terms: CodeTerms, lines: Sequence[LineFacts], *, currency: str,
               tier_slug: str | None) -> Applied:
    """What the code takes off these lines for a shopper of ``tier_slug`` (None: not a
    member). Raises DiscountNotApplicable (with the reason) or DiscountNotBetter."""
    if terms.tier_slugs and tier_slug not in terms.tier_slugs:
        raise DiscountNotApplicable(
            f"the code {terms.code} is for members of {', '.join(sorted(terms.tier_slugs))}",
            field=FIELD, reason="tier")
    covered = [_covers(terms, line) for line in lines]
    if not any(covered):
        raise DiscountNotApplicable(f"the code {terms.code} covers nothing in this cart",
                                    field=FIELD, reason="scope")
    if terms.kind is DiscountKind.fixed and terms.currency != currency:
        raise DiscountNotApplicable(f"the code {terms.code} is in {terms.currency}; this cart "
                                    f"is in {currency}", field=FIELD, reason="currency")
    members = tuple(line.member_unit_amount for line in lines)
    if terms.kind is DiscountKind.free_delivery:
        return Applied(members, tuple(0 for _ in lines), free_delivery=True)
    instead = terms.stacking is Stacking.instead_of_member_price
    units = tuple(line.list_unit_amount if instead and cover else line.member_unit_amount
                  for line, cover in zip(lines, covered, strict=True))
    bases = [unit * line.quantity if cover else 0
             for unit, line, cover in zip(units, lines, covered, strict=True)]
    if terms.kind is DiscountKind.percentage:
        discounts = [base * terms.percent // 100 for base in bases]
    else:
        discounts = proportional_share(min(terms.amount, sum(bases)), bases)
    if instead:
        member_saving = sum((line.list_unit_amount - line.member_unit_amount) * line.quantity
                            for line, cover in zip(lines, covered, strict=True) if cover)
        if member_saving > 0 and member_saving >= sum(discounts):
            raise DiscountNotBetter(
                f"the code {terms.code} does not add to member prices, and your member prices "
                f"already save more on these items", field=FIELD, reason="member-price")
    return Applied(units, tuple(discounts), free_delivery=False)
