from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from dropline.discounts.rules import DiscountKind, Stacking
from dropline.schemas import Amount, Currency, Id, Input, Output, ShortText, Slug


class DiscountCreate(Input):
    """A code; ``percent`` for a percentage code, ``amount`` (minor units of ``currency``) for
    a fixed one, neither for free delivery. Empty scope lists match everything."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                      examples=["SPRING10"])
    kind: DiscountKind
    percent: int = Field(0, ge=0, le=100)
    amount: Amount = 0
    currency: Currency = "GBP"
    description: ShortText = ""
    product_ids: list[Id] = Field(default_factory=list, max_length=500)
    family_slugs: list[Slug] = Field(default_factory=list, max_length=100)
    drop_ids: list[Id] = Field(default_factory=list, max_length=100)
    tier_slugs: list[Slug] = Field(default_factory=list, max_length=50)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_uses: int | None = Field(None, ge=1, le=10_000_000)
    max_uses_per_customer: int | None = Field(None, ge=1, le=10_000)
    stacking: Stacking = Stacking.with_member_price

    @model_validator(mode="after")
    def _aware(self) -> DiscountCreate:
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a UTC offset, e.g. 2026-12-24T00:00:00Z")
        return self


class DiscountRead(Output):
    id: int
    code: str
    kind: DiscountKind
    percent: int
    amount: int
    currency: str
    description: str
    scope: dict[str, Any]
    stacking: Stacking
    starts_at: datetime | None
    ends_at: datetime | None
    max_uses: int | None
    max_uses_per_customer: int | None
    uses: int
    disabled_at: datetime | None
    created_at: datetime
