from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dropline.catalog.models import ConditionGrade
from dropline.orders.models import OrderStatus
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


class RefundCreate(Input):
    amount: PositiveAmount
    reason: ShortText = ""


class OrderLineRead(Output):
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


class OrderRead(Output):
    id: int
    status: OrderStatus
    email: str
    currency: str
    subtotal_amount: int
    discount_amount: int
    shipping_amount: int
    total_amount: int
    refunded_amount: int
    fulfilment_path: str
    created_at: datetime
    paid_at: datetime | None
    lines: list[OrderLineRead]
    payments: list[PaymentRead]
    refunds: list[RefundRead]


class OrderSummary(Output):
    id: int
    status: OrderStatus
    currency: str
    total_amount: int
    created_at: datetime
