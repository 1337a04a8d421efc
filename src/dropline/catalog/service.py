"""Catalog use cases: families, products with their variants, prices, stock (counted, taken
by sales, and adjusted by hand with a reason)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dropline.catalog.models import (
    ConditionGrade,
    Product,
    ProductFamily,
    ProductStatus,
    StockAdjustment,
    Variant,
)
from dropline.catalog.rules import disclosure_problem, stock_change_problem
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


# --- the console's editing: products, variants, hand adjustments ----------------------------


def search_products(session: Session, *, text: str = "", status: ProductStatus | None = None,
                    limit: int = 25, offset: int = 0) -> tuple[list[Product], int]:
    """Products whose name, slug or a variant's SKU contains ``text`` (any status unless
    one is given), newest first, with the number that match."""
    query = select(Product)
    if text.strip():
        like = f"%{text.strip().lower()[:100]}%"
        skus = select(Variant.product_id).where(func.lower(Variant.sku).like(like))
        query = query.where(or_(func.lower(Product.name).like(like),
                                func.lower(Product.slug).like(like), Product.id.in_(skus)))
    if status is not None:
        query = query.where(Product.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Product.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def update_product(session: Session, *, clock: Clock, product_id: int, name: str,
                   description: str, family_slug: str, status: ProductStatus) -> Product:
    product = get_product(session, product_id)
    if not name.strip():
        raise InvalidInput("a product needs a name", field="name")
    product.name = name.strip()
    product.description = description
    product.family_id = ensure_family(session, slug=family_slug).id
    product.status = status
    product.updated_at = clock.now()
    session.flush()
    record_event(session, clock=clock, type="product.updated", subject_type="product",
                 subject_id=product.id, payload={"slug": product.slug,
                                                 "status": status.value})
    return product


def add_variant(session: Session, *, clock: Clock, product_id: int, spec: VariantSpec
                ) -> Variant:
    get_product(session, product_id)
    if session.scalar(select(Variant.id).where(Variant.sku == spec.sku)) is not None:
        raise AlreadyExists(f"SKU {spec.sku!r} is already in use", field="sku")
    if problem := disclosure_problem(spec.condition_grade, spec.condition_disclosure):
        raise InvalidInput(problem, field="condition_disclosure")
    variant = Variant(product_id=product_id, **spec.__dict__)
    session.add(variant)
    session.flush()
    record_event(session, clock=clock, type="variant.created", subject_type="variant",
                 subject_id=variant.id, payload={"sku": spec.sku, "product_id": product_id})
    return variant


def update_variant(session: Session, *, clock: Clock, variant_id: int, name: str,
                   price_amount: int, condition_grade: ConditionGrade,
                   condition_disclosure: str, weight_grams: int, final_sale: bool,
                   active: bool, actor: str) -> Variant:
    """Everything but the SKU and the currency (orders and invoices name them). A price change
    is also a ``variant.price_changed`` event, as from ``set_price``."""
    variant = get_variant(session, variant_id)
    if problem := disclosure_problem(condition_grade, condition_disclosure):
        raise InvalidInput(problem, field="condition_disclosure")
    if not 0 <= price_amount <= 10**12:
        raise InvalidInput("a price is 0 or more, in minor units", field="price_amount")
    if not 0 <= weight_grams <= 1_000_000:
        raise InvalidInput("a weight is 0 to 1,000,000 grams", field="weight_grams")
    if price_amount != variant.price_amount:
        set_price(session, clock=clock, variant_id=variant_id, price_amount=price_amount,
                  actor=actor)
    variant.name = name.strip() or variant.name
    variant.condition_grade = condition_grade
    variant.condition_disclosure = condition_disclosure.strip()
    variant.weight_grams = weight_grams
    variant.final_sale = final_sale
    variant.active = active
    session.flush()
    return variant


def adjust_stock(session: Session, *, clock: Clock, location_code: str, variant_id: int,
                 delta: int, reason: str, note: str = "", actor: str) -> StockAdjustment:
    """Changes a level by ``delta`` by arithmetic in one conditional UPDATE (never below zero,
    whatever sells meanwhile), and records the change with its reason in the stock ledger."""
    location = get_location_by_code(session, location_code)
    get_variant(session, variant_id)
    current = session.scalar(select(StockLevel.on_hand).where(
        StockLevel.location_id == location.id, StockLevel.variant_id == variant_id))
    if problem := stock_change_problem(delta=delta, on_hand=current or 0, reason=reason):
        raise InvalidInput(problem[1], field=problem[0])
    if current is None:
        insert = postgresql.insert if session.bind and session.bind.dialect.name == \
            "postgresql" else sqlite.insert
        session.execute(insert(StockLevel).values(location_id=location.id,
                                                  variant_id=variant_id, on_hand=0)
                        .on_conflict_do_nothing(index_elements=["location_id", "variant_id"]))
    changed = session.execute(
        update(StockLevel)
        .where(StockLevel.location_id == location.id, StockLevel.variant_id == variant_id,
               StockLevel.on_hand + delta >= 0)
        .values(on_hand=StockLevel.on_hand + delta)
        .returning(StockLevel.on_hand)).scalar()
    if changed is None:  # sold meanwhile: the level is lower than the form showed
        raise InvalidInput(f"not enough on hand to remove {-delta}", field="delta")
    adjustment = StockAdjustment(location_id=location.id, variant_id=variant_id, delta=delta,
                                 on_hand_after=int(changed), reason=reason,
                                 note=note.strip()[:300], actor=actor, created_at=clock.now())
    session.add(adjustment)
    session.flush()
    record_event(session, clock=clock, type="stock.adjusted", subject_type="variant",
                 subject_id=variant_id, payload={"location": location_code, "delta": delta,
                                                 "on_hand": int(changed), "reason": reason,
                                                 "actor": actor})
    return adjustment


def stock_levels(session: Session, variant_ids: Sequence[int]
                 ) -> dict[int, list[tuple[Location, int]]]:
    """Each variant's levels per location (locations without a row are left out)."""
    levels: dict[int, list[tuple[Location, int]]] = {vid: [] for vid in variant_ids}
    if variant_ids:
        for location, variant_id, on_hand in session.execute(
                select(Location, StockLevel.variant_id, StockLevel.on_hand)
                .join(StockLevel, StockLevel.location_id == Location.id)
                .where(StockLevel.variant_id.in_(variant_ids)).order_by(Location.code)):
            levels[variant_id].append((location, on_hand))
    return levels


def list_locations(session: Session) -> list[Location]:
    return list(session.scalars(select(Location).where(Location.active.is_(True))
                                .order_by(Location.code)))


def stock_ledger(session: Session, variant_ids: Sequence[int], *, limit: int = 50
                 ) -> list[tuple[StockAdjustment, str]]:
    """The latest hand adjustments of these variants, newest first, with the location code."""
    if not variant_ids:
        return []
    return [(adj, code) for adj, code in session.execute(
        select(StockAdjustment, Location.code)
        .join(Location, Location.id == StockAdjustment.location_id)
        .where(StockAdjustment.variant_id.in_(variant_ids))
        .order_by(StockAdjustment.id.desc()).limit(limit))]
