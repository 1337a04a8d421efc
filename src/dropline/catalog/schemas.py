from __future__ import annotations

from pydantic import Field

from dropline.catalog.models import ConditionGrade, ProductStatus
from dropline.schemas import (
    Amount,
    Currency,
    Id,
    Input,
    LongText,
    Name,
    Output,
    ShortText,
    Slug,
)


class VariantCreate(Input):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: Name
    price_amount: Amount
    currency: Currency
    condition_grade: ConditionGrade = ConditionGrade.new
    condition_disclosure: LongText = ""
    weight_grams: int = Field(0, ge=0, le=1_000_000)
    final_sale: bool = False


class ProductCreate(Input):
    name: Name
    slug: Slug | None = None
    family: Slug = Field(description="product family slug; created if new")
    description: LongText = ""
    status: ProductStatus = ProductStatus.active
    variants: list[VariantCreate] = Field(min_length=1, max_length=100)


class PriceUpdate(Input):
    price_amount: Amount


class StockUpdate(Input):
    location: str = Field(min_length=1, max_length=32, description="location code")
    variant_id: Id
    on_hand: int = Field(ge=0, le=10_000_000)


class VariantRead(Output):
    id: int
    sku: str
    name: str
    price_amount: int
    currency: str
    condition_grade: ConditionGrade
    condition_disclosure: str
    weight_grams: int
    final_sale: bool
    available: int = 0


class ProductRead(Output):
    id: int
    slug: str
    name: str
    description: str
    family: str
    family_name: str = ""  # as shoppers read it ("Eau de parfum"), not the slug
    status: ProductStatus
    variants: list[VariantRead]


class FamilyRead(Output):
    id: int
    slug: str
    name: str


class StockRead(Output):
    location_id: int
    variant_id: int
    on_hand: int


__all__ = ["FamilyRead", "PriceUpdate", "ProductCreate", "ProductRead", "ShortText",
           "StockRead", "StockUpdate", "VariantCreate", "VariantRead"]
