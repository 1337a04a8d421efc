"""Pydantic I/O of the pop-up domain (``XCreate`` in, ``XRead`` out); every field bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from dropline.schemas import (
    DateTimeText,
    Email,
    Id,
    Input,
    PaymentInput,
    PaymentMethodRef,
    Slug,
)

Code = str
CODE = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")


class PopupCreate(Input):
    location: Code = CODE
    hub: Code = CODE
    opens_at: DateTimeText
    closes_at: DateTimeText


class Quantity(Input):
    variant_id: Id
    quantity: int = Field(ge=1, le=100_000)


class TransferCreate(Input):
    lines: list[Quantity] = Field(min_length=1, max_length=500)
    lead_hours: float = Field(0, ge=0, le=24 * 30)


class RestockCreate(Input):
    factory: Code = CODE
    lines: list[Quantity] = Field(min_length=1, max_length=500)
    lead_hours: float = Field(48, ge=0, le=24 * 30)


class Count(Input):
    variant_id: Id
    counted: int = Field(ge=0, le=100_000)


class CloseCreate(Input):
    counts: list[Count] = Field(max_length=2000)


class TerminalIn(Input):
    terminal_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    entry_mode: Literal["contactless", "chip"] = "contactless"
    # The card the reader read, as the provider's reference: the reader hands the card to the
    # provider, never to the shop.
    payment_method: PaymentMethodRef


class CounterSaleCreate(PaymentInput):
    lines: list[Quantity] = Field(min_length=1, max_length=100)
    email: Email
    name: str = Field("", max_length=120)
    terminal: TerminalIn
    save_card: bool = True
    discount_code: str = Field("", max_length=40, description="a discount code the buyer "
                               "gave (any case); refused with the reason (422 or 409) if it "
                               "does not apply")


class CounterSignUp(Input):
    tier: Slug


class SaleRead(BaseModel):
    order_id: int
    popup: str
    email: str
    customer_id: int
    total_amount: int
    discount_code: str | None = None
    discount_amount: int = 0
    tax_amount: int = 0  # the VAT in the total (or added to it: ``tax_added_amount``)
    tax_added_amount: int = 0
    currency: str
    card_last4: str
    can_sign_up: bool


class CountLineRead(BaseModel):
    variant_id: int
    sku: str
    expected: int
    counted: int
    variance: int


class CloseRead(BaseModel):
    popup: str
    transferred_back: int
    variance_units: int
    lines: list[CountLineRead]


class PopupRead(BaseModel):
    code: str
    name: str
    status: str
    opens_at: DateTimeText
    closes_at: DateTimeText
    sales: int
    revenue_amount: int
    buyers: int
    members: int
    conversion_rate: float
    conversion_low: float
    conversion_high: float


class MovementRead(BaseModel):
    id: int
    kind: str
    variant_id: int
    quantity: int
    due_at: datetime


class VariantContent(Input):
    key: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")
    label: str = Field("", max_length=120)
    headline: str = Field("", max_length=300)
    image: str = Field("", max_length=300)
    layout: str = Field("", max_length=40)


class ExperimentCreate(Input):
    slug: Slug
    name: str = Field(min_length=1, max_length=200)
    page_kind: Literal["product", "drop"]
    target: str = Field("", max_length=120)
    variants: list[VariantContent] = Field(min_length=2, max_length=4)


class ObservationCreate(Input):
    visitor: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    variant: str = Field(min_length=1, max_length=16)
    kind: Literal["exposure", "conversion"]


class ArmRead(BaseModel):
    variant: str
    exposures: int
    conversions: int
    rate: float
    low: float
    high: float
    lift_low: float | None
    lift_high: float | None


class ExperimentRead(BaseModel):
    slug: str
    name: str
    status: str
    page_kind: str
    target: str
    arms: list[ArmRead]
