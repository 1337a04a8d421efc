from __future__ import annotations

from pydantic import Field

from dropline.carts.models import CartStatus
from dropline.schemas import Input, Output


class CartCreate(Input):
    """No fields yet: declared so that a body sent to start a cart is validated (an unknown
    field is refused) rather than silently ignored."""


class LineSet(Input):
    quantity: int = Field(ge=0, le=99, description="0 removes the line")


class CartLineRead(Output):
    variant_id: int
    sku: str
    product_name: str
    product_slug: str
    variant_name: str
    condition_grade: str
    condition_disclosure: str
    unit_price_amount: int
    quantity: int
    line_total_amount: int
    currency: str


class CartRead(Output):
    id: str
    status: CartStatus
    currency: str
    lines: list[CartLineRead]
    subtotal_amount: int
    shipping_amount: int
    total_amount: int
