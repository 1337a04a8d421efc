"""Catalog use cases: families, products with their variants, prices, stock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dropline.catalog.models import ConditionGrade, Product, ProductFamily, ProductStatus, Variant
from dropline.catalog.rules import disclosure_problem
from dropline.clock import Clock
from dropline.errors import AlreadyExists, InvalidInput, NotFound
from dropline.events.service import record_event
from dropline.locations.models import Location, StockLevel


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    name: str
    price_amount: int
    currency: str
    condition_grade: ConditionGrade = ConditionGrade.new
    condition_disclosure: str = ""
    weight_grams: int = 0
    final_sale: bool = False


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:120] or "item"


def ensure_family(session: Session, *, slug: str, name: str | None = None) -> ProductFamily:
    family = session.scalar(select(ProductFamily).where(ProductFamily.slug == slug))
    if family is None:
        family = ProductFamily(slug=slug, name=name or slug.replace("-", " ").title())
        session.add(family)
        session.flush()
    return family


def list_families(session: Session) -> list[ProductFamily]:
    return list(session.scalars(select(ProductFamily).order_by(ProductFamily.slug)))


def create_product(
    session: Session,
    *,
    clock: Clock,
    name: str,
    family_slug: str,
    variants: Sequence[VariantSpec],
    description: str = "",
    slug: str | None = None,
    status: ProductStatus = ProductStatus.active,
) -> Product:
    slug = slug or slugify(name)
    if session.scalar(select(Product.id).where(Product.slug == slug)) is not None:
        raise AlreadyExists(f"a product with slug {slug!r} exists", field="slug")
    if not variants:
        raise InvalidInput("a product needs at least one variant", field="variants")
    skus = [v.sku for v in variants]
    if len(set(skus)) != len(skus):
        raise InvalidInput("variant SKUs must be distinct", field="variants")
    taken = session.scalars(select(Variant.sku).where(Variant.sku.in_(skus))).all()
    if taken:
        raise AlreadyExists(f"SKU(s) already in use: {', '.join(sorted(taken))}", field="sku")
    for spec in variants:
        if problem := disclosure_problem(spec.condition_grade, spec.condition_disclosure):
            raise InvalidInput(problem, field="condition_disclosure", sku=spec.sku)

    family = ensure_family(session, slug=family_slug)
    now = clock.now()
    product = Product(slug=slug, name=name, description=description, family_id=family.id,
                      status=status, created_at=now, updated_at=now)
    session.add(product)
    session.flush()
    for spec in variants:
        session.add(Variant(product_id=product.id, **spec.__dict__))
    session.flush()
    record_event(session, clock=clock, type="product.created", subject_type="product",
                 subject_id=product.id, payload={"slug": slug, "product_family": family_slug})
    return product


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"product {product_id} not found")
    return product


def get_product_by_slug(session: Session, slug: str, *, public: bool = True) -> Product:
    product = session.scalar(select(Product).where(Product.slug == slug))
    if product is None or (public and product.status is not ProductStatus.active):
        raise NotFound(f"product {slug!r} not found")
    return product


def list_products(
    session: Session, *, family_slug: str | None = None, public: bool = True,
    limit: int = 100, offset: int = 0,
) -> list[Product]:
    query = select(Product).order_by(Product.id)
    if public:
        query = query.where(Product.status == ProductStatus.active)
    if family_slug:
        query = query.join(ProductFamily).where(ProductFamily.slug == family_slug)
    return list(session.scalars(query.limit(limit).offset(offset)))


def variants_of(session: Session, product_ids: Sequence[int]) -> dict[int, list[Variant]]:
    grouped: dict[int, list[Variant]] = {pid: [] for pid in product_ids}
    if product_ids:
        rows = session.scalars(
            select(Variant).where(Variant.product_id.in_(product_ids)).order_by(Variant.id)
        )
        for variant in rows:
            grouped[variant.product_id].append(variant)
    return grouped


def family_slugs(session: Session, family_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(
        select(ProductFamily.id, ProductFamily.slug).where(ProductFamily.id.in_(set(family_ids)))
    )
    return dict(rows.all())


def family_names(session: Session, family_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """id -> (slug, name) of each family."""
    rows = session.execute(select(ProductFamily.id, ProductFamily.slug, ProductFamily.name)
                           .where(ProductFamily.id.in_(set(family_ids))))
    return {fid: (slug, name) for fid, slug, name in rows}


def get_variant(session: Session, variant_id: int) -> Variant:
    variant = session.get(Variant, variant_id)
    if variant is None:
        raise NotFound(f"variant {variant_id} not found")
    return variant


def set_price(
    session: Session, *, clock: Clock, variant_id: int, price_amount: int, actor: str
) -> Variant:
    variant = get_variant(session, variant_id)
    old = variant.price_amount
    variant.price_amount = price_amount
    session.flush()
    record_event(session, clock=clock, type="variant.price_changed", subject_type="variant",
                 subject_id=variant.id, payload={"sku": variant.sku, "old_amount": old,
                                                 "new_amount": price_amount,
                                                 "currency": variant.currency, "actor": actor})
    return variant


def get_location_by_code(session: Session, code: str) -> Location:
    location = session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise NotFound(f"location {code!r} not found")
    return location


def set_stock(
    session: Session, *, clock: Clock, location_code: str, variant_id: int, on_hand: int,
    actor: str,
) -> StockLevel:
    """Sets the counted quantity (a stock take). Sales change stock by arithmetic instead."""
    location = get_location_by_code(session, location_code)
    get_variant(session, variant_id)
    values = {"location_id": location.id, "variant_id": variant_id, "on_hand": on_hand}
    insert = postgresql.insert if session.bind and session.bind.dialect.name == "postgresql" \
        else sqlite.insert
    statement = insert(StockLevel).values(**values)
    session.execute(statement.on_conflict_do_update(
        index_elements=["location_id", "variant_id"], set_={"on_hand": on_hand}))
    record_event(session, clock=clock, type="stock.counted", subject_type="variant",
                 subject_id=variant_id, payload={"location": location_code,
                                                 "on_hand": on_hand, "actor": actor})
    level = session.get(StockLevel, (location.id, variant_id), populate_existing=True)
    assert level is not None
    return level


def available_stock(session: Session, variant_ids: Sequence[int]) -> dict[int, int]:
    """Units on hand per variant, over all active locations that sell online."""
    rows = session.execute(
        select(StockLevel.variant_id, StockLevel.on_hand)
        .join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.variant_id.in_(variant_ids), Location.active.is_(True))
    )
    totals = {vid: 0 for vid in variant_ids}
    for variant_id, on_hand in rows:
        totals[variant_id] += on_hand
    return totals


def take_stock(session: Session, *, location_id: int, variant_id: int, quantity: int) -> bool:
    """Decrement by arithmetic in one conditional UPDATE; False when not enough is on hand.
    The row count, not a prior read, decides: correct on both engines under any interleaving."""
    result = session.execute(
        update(StockLevel)
        .where(StockLevel.location_id == location_id, StockLevel.variant_id == variant_id,
               StockLevel.on_hand >= quantity)
        .values(on_hand=StockLevel.on_hand - quantity)
    )
    return result.rowcount == 1


def return_stock(session: Session, *, location_id: int, variant_id: int, quantity: int) -> None:
    session.execute(
        update(StockLevel)
        .where(StockLevel.location_id == location_id, StockLevel.variant_id == variant_id)
        .values(on_hand=StockLevel.on_hand + quantity)
    )
