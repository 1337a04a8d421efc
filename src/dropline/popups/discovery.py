"""The compact product index the browser downloads for private, on-device discovery.

Search and "similar items" run in the page (``static/popups/discovery.js``) over this index:
no query ever reaches the server. The index holds only public facts: ids, names, family,
tags, the lowest price, and units available per listed store with the store's coordinates,
so the page can say what is in stock *near the shopper* without sending where they are.

Tags are derived from the product's own words (the name and description, minus stop words)
and its family, so a brand needs to maintain nothing extra."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.catalog.models import Product, ProductFamily, ProductStatus, Variant
from dropline.locations.models import Location, StockLevel
from dropline.popups.listings import list_stores

INDEX_VERSION = 1
MAX_TAGS = 12
_STOP = ("a an and are as at be by for from has in is it its of on or our that the this to was "
         "with you your ml eau de parfum set one two three each into over more most very all")
STOP_WORDS = frozenset(_STOP.split(" "))
_WORD = re.compile(r"[a-z][a-z'-]{2,}")


def tags_for(name: str, description: str, family: str) -> list[str]:
    """Distinct words of the name first, then of the description, then the family slug."""
    seen: list[str] = []
    for text in (name, description):
        for word in _WORD.findall(text.lower()):
            word = word.strip("'-")
            if word not in STOP_WORDS and word not in seen:
                seen.append(word)
    tags = seen[:MAX_TAGS]
    if family not in tags:
        tags.append(family)
    return tags


def build_index(session: Session) -> dict[str, Any]:
    stores = list_stores(session)
    location_ids = dict(session.execute(select(Location.code, Location.id).where(
        Location.code.in_([s.code for s in stores]))).all())
    by_location = {lid: code for code, lid in location_ids.items()}
    rows = session.execute(
        select(Product, ProductFamily.slug).join(ProductFamily, ProductFamily.id ==
                                                 Product.family_id)
        .where(Product.status == ProductStatus.active).order_by(Product.id)).all()
    variants: dict[int, list[Variant]] = {}
    for variant in session.scalars(select(Variant).where(Variant.active.is_(True))
                                   .order_by(Variant.id)):
        variants.setdefault(variant.product_id, []).append(variant)
    stock: dict[int, dict[str, int]] = {}
    for location_id, variant_id, on_hand in session.execute(
            select(StockLevel.location_id, StockLevel.variant_id, StockLevel.on_hand)
            .where(StockLevel.location_id.in_(by_location), StockLevel.on_hand > 0)):
        per = stock.setdefault(variant_id, {})
        per[by_location[location_id]] = per.get(by_location[location_id], 0) + on_hand
    products = []
    for product, family in rows:
        mine = variants.get(product.id, [])
        if not mine:
            continue
        near: dict[str, int] = {}
        for variant in mine:
            for code, units in stock.get(variant.id, {}).items():
                near[code] = near.get(code, 0) + units
        products.append({
            "id": product.id, "slug": product.slug, "name": product.name, "family": family,
            "tags": tags_for(product.name, product.description, family),
            "price": min(v.price_amount for v in mine), "currency": mine[0].currency,
            "stock": near,
        })
    body: dict[str, Any] = {
        "version": INDEX_VERSION,
        "stores": [{"code": s.code, "name": s.name, "kind": s.kind, "lat": s.latitude,
                    "lon": s.longitude} for s in stores],
        "products": products,
    }
    return body


def index_etag(body: dict[str, Any]) -> str:
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return f'"idx-{hashlib.sha256(raw).hexdigest()[:20]}"'
