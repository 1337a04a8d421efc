from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from dropline.catalog.models import ConditionGrade
from dropline.orders.models import OrderStatus, ShipmentStatus
from dropline.orders.rules import OrderStage
from dropline.payments.models import PaymentStatus, RefundStatus
from dropline.schemas import (
    Id,
    Input,
    Output,
    PaymentInput,
    PaymentMethodRef,
    PositiveAmount,
    ShortText,
)


class AddressIn(Input):
    name: str = Field(min_length=1, max_length=120)
    line1: str = Field(min_length=1, max_length=200)
    line2: str = Field("", max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postcode: str = Field(min_length=2, max_length=16)
    country: str = Field("GB", pattern=r"^[A-Z]{2}$")


class DeliveryIn(Input):
    """A hub delivery window from GET /api/v1/delivery-options; without it, central shipping."""

    window_id: Id
    latitude: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    longitude: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)


class CheckoutCreate(PaymentInput):
    cart_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    payment_method: PaymentMethodRef
    shipping_address: AddressIn
    delivery: DeliveryIn | None = None
    discount_code: str = Field("", max_length=40, description="a discount code (any case); "
                               "a refused one answers 409/422 with a code-specific problem type "
                               "(discount-expired, discount-cap-reached ...)")
    vat_number: str = Field("", max_length=24, description="a business buyer's UK or EU VAT "
                            "number; from another country than the shop's, no VAT is charged "
                            "(reverse charge)")


class QuoteCreate(Input):
    """The cart priced as ``POST /checkout`` would charge it, without paying."""

    cart_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    postcode: str = Field("", max_length=16)
    delivery: DeliveryIn | None = None
    discount_code: str = Field("", max_length=40)
    country: str = Field("", pattern=r"^([A-Z]{2})?$",
                         description="the delivery country (default: the shop's)")
    vat_number: str = Field("", max_length=24)


class QuoteLineRead(Output):
    variant_id: int
    quantity: int
    list_unit_amount: int
    unit_price_amount: int
    line_total_amount: int
    discount_amount: int
    tax_class: str
    tax_rate_bp: int
    tax_amount: int


class QuoteRead(Output):
    currency: str
    lines: list[QuoteLineRead]
    list_subtotal_amount: int
    subtotal_amount: int
    member_saving_amount: int
    discount_code: str | None
    discount_amount: int
    delivery_discount_amount: int
    shipping_amount: int
    shipping_tax_amount: int
    tax_amount: int
    tax_added_amount: int
    prices_include_tax: bool
    reverse_charge: bool
    total_amount: int
    window_id: int | None
    problem: str


class RefundCreate(Input):
    amount: PositiveAmount
    reason: ShortText = ""


class OrderLineRead(Output):
    id: int
    variant_id: int
    sku: str
    product_name: str
    variant_name: str
    product_family: str
    condition_grade: ConditionGrade
    condition_disclosure: str
    unit_price_amount: int
    quantity: int
    line_total_amount: int
    discount_amount: int = 0
    tax_class: str = "standard"
    tax_rate_bp: int = 0
    tax_amount: int = 0
    cancelled_quantity: int


class PaymentRead(Output):
    id: int
    status: PaymentStatus
    amount: int
    currency: str
    card_last4: str
    decline_code: str | None


class RefundRead(Output):
    id: int
    amount: int
    currency: str
    reason: str
    status: RefundStatus
    created_at: datetime


class ShipmentLineRead(Output):
    order_line_id: int
    sku: str
    quantity: int  # units still to ship (cancelled units left out)


class ShipmentRead(Output):
    id: int
    location: str
    status: ShipmentStatus
    carrier: str
    tracking_number: str | None
    tracking_url: str
    shipped_at: datetime | None
    delivered_at: datetime | None
    lines: list[ShipmentLineRead]


class TimelineRead(Output):
    label: str
    event_type: str
    at: datetime


class OrderRead(Output):
    id: int
    status: OrderStatus
    stage: OrderStage
    email: str
    currency: str
    subtotal_amount: int
    discount_code: str | None = None
    discount_amount: int
    shipping_amount: int
    tax_amount: int = 0
    tax_added_amount: int = 0
    reverse_charge: bool = False
    total_amount: int
    refunded_amount: int
    fulfilment_path: str
    created_at: datetime
    paid_at: datetime | None
    lines: list[OrderLineRead]
    payments: list[PaymentRead]
    refunds: list[RefundRead]
    shipments: list[ShipmentRead]
    timeline: list[TimelineRead]


class OrderSummary(Output):
    id: int
    status: OrderStatus
    stage: OrderStage
    currency: str
    total_amount: int
    created_at: datetime


class LineQuantity(Input):
    line_id: Id
    quantity: int = Field(ge=1, le=100_000)


class CancelCreate(Input):
    """Without ``lines``, the whole order; with them, those units of those lines."""

    reason: ShortText = ""
    lines: list[LineQuantity] | None = Field(None, min_length=1, max_length=200)


class LineMove(Input):
    line_id: Id
    location: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")


class AllocateCreate(Input):
    """Lines to take from another location than checkout took them from (optional)."""

    moves: list[LineMove] = Field(default_factory=list, max_length=200)


class ShipCreate(Input):
    carrier: str = Field("manual", min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")
    tracking_number: str | None = Field(None, min_length=1, max_length=64,
                                        pattern=r"^[A-Za-z0-9 -]+$")
    service: str = Field("", max_length=64)
    shipment_id: Id | None = None


class DeliveryCreate(Input):
    outcome: Literal["delivered", "delivery_failed", "returned"]
    note: ShortText = ""


class PickRowRead(Output):
    sku: str
    product_name: str
    variant_name: str
    quantity: int
    orders: list[int]
