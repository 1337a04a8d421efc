from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from dropline.drops.models import HoldSource, HoldStatus, WaitlistStatus
from dropline.drops.rules import MAX_SLOTS, DropState
from dropline.orders.schemas import AddressIn, DeliveryIn
from dropline.schemas import (
    Id,
    Input,
    Instant,
    Name,
    Output,
    PaymentInput,
    PaymentMethodRef,
    Slug,
)

MAX_UNITS = 10_000_000


class DropVariantIn(Input):
    variant_id: Id
    cap: int | None = Field(None, ge=0, le=MAX_UNITS,
                            description="its own cap; omit to share the drop's cap")


class DropScheduleIn(Input):
    starts_at: Instant
    ends_at: Instant
    early_access_minutes: int = Field(0, ge=0, le=10_080, description="longest member lead")
    admission_per_minute: int = Field(600, ge=1, le=1_000_000)
    queue_enabled: bool = True
    hold_ttl_seconds: int = Field(600, ge=10, le=86_400)
    offer_ttl_seconds: int = Field(900, ge=10, le=86_400)

    @model_validator(mode="after")
    def ends_after_start(self) -> DropScheduleIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class DropCreate(DropScheduleIn):
    slug: Slug
    name: Name
    variants: list[DropVariantIn] = Field(min_length=1, max_length=100)
    cap: int = Field(0, ge=0, le=MAX_UNITS, description="units shared by uncapped variants")
    per_person_limit: int = Field(2, ge=1, le=1000)
    slots: int = Field(32, ge=1, le=MAX_SLOTS, description="rows the units are split over")
    location_code: str | None = Field(None, max_length=64)


class RestockIn(Input):
    units: int = Field(ge=1, le=MAX_UNITS)
    variant_id: Id | None = None


class DropVariantRead(Output):
    variant_id: int
    cap: int | None


class DropRead(Output):
    id: int
    slug: str
    name: str
    state: DropState
    cap: int
    remaining: int
    per_person_limit: int
    starts_at: datetime
    ends_at: datetime
    early_access_minutes: int
    admission_per_minute: int
    queue_enabled: bool
    hold_ttl_seconds: int
    offer_ttl_seconds: int
    variants: list[DropVariantRead]


class QueueStatusRead(Output):
    drop_id: int
    position: int
    opens_at: datetime
    admitted_at: datetime
    admitted: bool
    eta_seconds: int
    state: DropState
    poll_after_seconds: int


class AdmissionRead(Output):
    token: str
    expires_at: datetime


class HoldLineIn(Input):
    variant_id: Id
    quantity: int = Field(ge=1, le=1000)


class HoldCreate(Input):
    lines: list[HoldLineIn] = Field(min_length=1, max_length=20)
    admission_token: str | None = Field(None, max_length=1000)


class HoldRead(Output):
    id: int
    drop_id: int
    status: HoldStatus
    source: HoldSource
    quantity: int
    lines: list[dict[str, int]]
    created_at: datetime
    expires_at: datetime
    order_id: int | None


WINDOW = ("a hub delivery window (from GET /api/v1/delivery-options), booked with the order "
          "and its price added to the total; a full window answers 409 and nothing is taken. "
          "Without one, the order's delivery is decided after the drop")


def _discount_code() -> Any:
    return Field("", max_length=40, description="a discount code (any case) whose scope covers "
                 "the drop's goods; refused with the reason, naming this field, if it does not "
                 "apply (422) or is used up (409)")


class HoldCheckout(PaymentInput):
    payment_method: PaymentMethodRef
    shipping_address: AddressIn
    discount_code: str = _discount_code()
    delivery: DeliveryIn | None = Field(None, description=WINDOW)


class PurchaseCreate(HoldCreate, PaymentInput):
    payment_method: PaymentMethodRef
    shipping_address: AddressIn
    discount_code: str = _discount_code()
    delivery: DeliveryIn | None = Field(None, description=WINDOW)


class WaitlistJoin(Input):
    variant_id: Id
    quantity: int = Field(1, ge=1, le=1000)


class WaitlistRead(Output):
    id: int
    drop_id: int
    variant_id: int
    quantity: int
    status: WaitlistStatus
    joined_at: datetime
    hold_id: int | None


VARIANT_KEY = re.compile(r"^[1-9][0-9]{0,15}$")


class DropStoryIn(Input):
    story: str | None = Field(None, max_length=20_000, description="Markdown; omit to keep")
    notes: dict[int, str] = Field(default_factory=dict, max_length=100,
                                  description="variant id -> a short note shown beside it",
                                  json_schema_extra={"propertyNames": {
                                      "pattern": VARIANT_KEY.pattern}})

    @field_validator("notes", mode="before")
    @classmethod
    def _variant_ids_as_keys(cls, value: Any) -> Any:
        # JSON keys are text: the document says digits, and only digits are read as an id
        # (int() alone would also take " 1", "+1" or "1_0").
        if isinstance(value, dict) and not all(
                isinstance(k, int) or (isinstance(k, str) and VARIANT_KEY.fullmatch(k))
                for k in value):
            raise ValueError("notes are keyed by variant id (digits)")
        return value


class DropStoryRead(Output):
    id: int
    story: str
    story_html: str
    notes: dict[int, str]
