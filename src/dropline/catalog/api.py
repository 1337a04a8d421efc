from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from dropline.catalog import service
from dropline.catalog.models import Product
from dropline.catalog.schemas import (
    FamilyRead,
    PriceUpdate,
    ProductCreate,
    ProductRead,
    StockRead,
    StockUpdate,
    VariantRead,
)
from dropline.schemas import IdPath
from dropline.web.deps import ClockDep, Principal, SessionDep, admin

router = APIRouter(tags=["catalog"])
CatalogWriter = Annotated[Principal, admin("catalog:write")]


def product_reads(session: Session, products: list[Product]) -> list[ProductRead]:
    ids = [p.id for p in products]
    variants = service.variants_of(session, ids)
    stock = service.available_stock(session, [v.id for vs in variants.values() for v in vs])
    families = service.family_names(session, [p.family_id for p in products])
    return [
        ProductRead(
            id=p.id, slug=p.slug, name=p.name, description=p.description,
            family=families[p.family_id][0], family_name=families[p.family_id][1],
            status=p.status,
            variants=[VariantRead.model_validate(v).model_copy(update={"available": stock[v.id]})
                      for v in variants[p.id]],
        )
        for p in products
    ]


@router.get("/products", response_model=list[ProductRead], summary="List products for sale")
def list_products(
    session: SessionDep,
    family: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[ProductRead]:
    products = service.list_products(session, family_slug=family, limit=limit, offset=offset)
    return product_reads(session, products)


@router.get("/products/{slug}", response_model=ProductRead, summary="One product by slug")
def get_product(slug: str, session: SessionDep) -> ProductRead:
    return product_reads(session, [service.get_product_by_slug(session, slug[:200])])[0]


@router.get("/families", response_model=list[FamilyRead], summary="Product families")
def list_families(session: SessionDep) -> list[FamilyRead]:
    return [FamilyRead.model_validate(f) for f in service.list_families(session)]


@router.post("/admin/products", response_model=ProductRead, status_code=status.HTTP_201_CREATED,
             tags=["admin"], summary="Create a product with its variants")
def create_product(body: ProductCreate, session: SessionDep, clock: ClockDep,
                   _: CatalogWriter) -> ProductRead:
    product = service.create_product(
        session, clock=clock, name=body.name, slug=body.slug, family_slug=body.family,
        description=body.description, status=body.status,
        variants=[service.VariantSpec(**v.model_dump()) for v in body.variants],
    )
    return product_reads(session, [product])[0]


@router.put("/admin/variants/{variant_id}/price", response_model=VariantRead, tags=["admin"],
            summary="Change a variant's price")
def set_price(variant_id: IdPath, body: PriceUpdate, session: SessionDep, clock: ClockDep,
              principal: CatalogWriter) -> VariantRead:
    variant = service.set_price(session, clock=clock, variant_id=variant_id,
                                price_amount=body.price_amount, actor=principal.key)
    return VariantRead.model_validate(variant)


@router.put("/admin/stock", response_model=StockRead, tags=["admin"],
            summary="Set the counted stock of a variant at a location")
def set_stock(body: StockUpdate, session: SessionDep, clock: ClockDep,
              principal: CatalogWriter) -> StockRead:
    level = service.set_stock(session, clock=clock, location_code=body.location,
                              variant_id=body.variant_id, on_hand=body.on_hand,
                              actor=principal.key)
    return StockRead.model_validate(level)
