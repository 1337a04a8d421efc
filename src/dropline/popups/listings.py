"""Local listings: schema.org JSON-LD (Product with Offers, Store for hubs and pop-ups) and the
local inventory feed listing services ingest (Google's local inventory fields: ``store_code``,
``id``, ``availability``, ``quantity``, ``price``, and the item's ``image_link``), per location,
as TSV or JSON.

The feed is rebuilt only when the shop's *stock version* moves: a few aggregates (the latest
domain event id, the units on hand, the stock rows, the prices) that change whenever stock,
prices or locations do (sales, transfers, counts and price changes all record events in the
same transaction). The version is also the feed's ETag, so a listing service that revalidates
gets a 304 while nothing changed."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.catalog.models import Product, ProductStatus, Variant
from dropline.events.models import DomainEvent
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.media.models import MediaOwner
from dropline.media.rules import largest_url
from dropline.media.service import images_of
from dropline.popups.models import Popup, PopupStatus

SCHEMA = "https://schema.org"
AVAILABILITY = {"in_stock": "InStock", "limited_availability": "LimitedAvailability",
                "out_of_stock": "OutOfStock"}
LIMITED_BELOW = 4  # 1..3 units: "limited availability"
FEED_COLUMNS = ("store_code", "id", "availability", "quantity", "price", "image_link")
LISTED_KINDS = (LocationKind.micro_hub, LocationKind.pop_up)
_POSTCODE = re.compile(r"^(?P<town>.*?)\s*(?P<postcode>[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})$")


def availability_of(quantity: int) -> str:
    if quantity <= 0:
        return "out_of_stock"
    return "limited_availability" if quantity < LIMITED_BELOW else "in_stock"


def feed_price(amount: int, currency: str) -> str:
    """Google's price attribute: "42.00 GBP" (two-decimal currencies)."""
    return f"{amount // 100}.{amount % 100:02d} {currency}"


def postal_address(address: str, country: str = "GB") -> dict[str, str]:
    """"Arch 9, Druid Street, London SE1 2HH" -> street, locality and postcode; an address that
    does not end in a UK postcode is kept whole as the street address."""
    parts = [p.strip() for p in address.split(",") if p.strip()]
    out = {"@type": "PostalAddress", "streetAddress": address, "addressCountry": country}
    if len(parts) >= 2 and (match := _POSTCODE.match(parts[-1])):
        out["streetAddress"] = ", ".join(parts[:-1])
        out["addressLocality"] = match["town"] or "London"
        out["postalCode"] = match["postcode"]
    return out


# ----------------------------------------------------------------------------- JSON-LD


def product_jsonld(product: Any, *, base_url: str = "",
                   images: Iterable[str] = ()) -> dict[str, Any]:
    """A schema.org Product with one Offer per variant. ``product`` is a ``ProductRead`` (or
    anything with slug, name, description, family and variants carrying sku, name,
    price_amount, currency and available), as the storefront already has it; ``images``: the
    URLs of its pictures, main one first."""
    url = f"{base_url}/products/{product.slug}"
    offers = [{
        "@type": "Offer", "sku": v.sku, "name": v.name, "url": url,
        "price": f"{v.price_amount // 100}.{v.price_amount % 100:02d}",
        "priceCurrency": v.currency,
        "availability": f"{SCHEMA}/{AVAILABILITY[availability_of(v.available)]}",
        "itemCondition": f"{SCHEMA}/" + ("NewCondition" if getattr(
            v, "condition_grade", "new") == "new" else "RefurbishedCondition"),
    } for v in product.variants]
    data = {"@context": SCHEMA, "@type": "Product", "name": product.name,
            "description": product.description, "sku": product.slug,
            "category": product.family, "url": url, "offers": offers}
    if pictures := [u if u.startswith(("http://", "https://")) else base_url + u
                    for u in images]:
        data["image"] = pictures
    return data


@dataclass(frozen=True)
class Store:
    code: str
    name: str
    kind: str  # "micro-hub" | "pop-up"
    address: str
    latitude: float | None
    longitude: float | None
    opens_at: str | None = None  # ISO dates, pop-ups only
    closes_at: str | None = None
    status: str = "open"


def list_stores(session: Session, *, include_closed: bool = False) -> list[Store]:
    """Hubs and pop-ups the public may see; a closed pop-up only when asked."""
    popups = {p.location_id: p for p in session.scalars(select(Popup))}
    stores = []
    for loc in session.scalars(select(Location).where(Location.kind.in_(LISTED_KINDS),
                                                      Location.active.is_(True))
                               .order_by(Location.kind, Location.code)):
        popup = popups.get(loc.id)
        hidden = popup is None or (popup.status is PopupStatus.closed and not include_closed)
        if loc.kind is LocationKind.pop_up and hidden:
            continue
        stores.append(Store(loc.code, loc.name, loc.kind.value, loc.address, loc.latitude,
                            loc.longitude,
                            popup.opens_at.date().isoformat() if popup else None,
                            popup.closes_at.date().isoformat() if popup else None,
                            popup.status.value if popup else "open"))
    return stores


def store_jsonld(store: Store, *, base_url: str = "", brand: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {
        "@context": SCHEMA, "@type": "Store", "@id": f"{base_url}/stores#{store.code}",
        "name": store.name, "url": f"{base_url}/stores#{store.code}",
        "address": postal_address(store.address),
    }
    if brand:
        data["brand"] = {"@type": "Brand", "name": brand}
    if store.latitude is not None and store.longitude is not None:
        data["geo"] = {"@type": "GeoCoordinates", "latitude": store.latitude,
                       "longitude": store.longitude}
    if store.opens_at and store.closes_at:
        # A pop-up trades between two dates: schema.org says so with a validity range.
        data["openingHoursSpecification"] = [{
            "@type": "OpeningHoursSpecification", "opens": "10:00", "closes": "18:00",
            "dayOfWeek": [f"{SCHEMA}/{d}" for d in ("Monday", "Tuesday", "Wednesday",
                                                    "Thursday", "Friday", "Saturday",
                                                    "Sunday")],
            "validFrom": store.opens_at, "validThrough": store.closes_at}]
    return data


# ----------------------------------------------------------------------------- the feed


@dataclass(frozen=True)
class FeedRow:
    store_code: str
    id: str  # the item id: the variant's SKU, as in the product feed
    availability: str
    quantity: int
    price: str
    image_link: str = ""  # the variant's own picture, else its product's main one


def stock_version(session: Session) -> str:
    """Moves whenever stock, prices or listed locations change (see the module docstring)."""
    last_event = session.scalar(select(func.max(DomainEvent.id))) or 0
    units, rows = session.execute(select(func.coalesce(func.sum(StockLevel.on_hand), 0),
                                         func.count())).one()
    prices = session.scalar(select(func.coalesce(func.sum(Variant.price_amount), 0))) or 0
    places = session.execute(select(func.count(), func.coalesce(func.sum(Location.id), 0))
                             .where(Location.active.is_(True))).one()
    raw = f"{last_event}.{units}.{rows}.{prices}.{places[0]}.{places[1]}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def item_images(session: Session, variants: Iterable[tuple[int, int]], *,
                media_url: str) -> dict[int, str]:
    """(variant id, product id) -> the URL of the variant's own main picture, else its
    product's; variants with neither are left out."""
    pairs = list(variants)
    own = images_of(session, MediaOwner.variant, [v for v, _ in pairs])
    of_product = images_of(session, MediaOwner.product, list({p for _, p in pairs}))
    found = {}
    for vid, pid in pairs:
        if assets := own[vid] or of_product[pid]:
            found[vid] = largest_url(assets[0], base_url=media_url)
    return found


def feed_rows(session: Session, *, media_url: str = "/media") -> list[FeedRow]:
    """One row per (listed store, active variant of an active product): a variant with no
    stock there is listed as out of stock, so a listing that said "in stock" is corrected."""
    stores = [s.code for s in list_stores(session)]
    locations = dict(session.execute(select(Location.code, Location.id)
                                     .where(Location.code.in_(stores))).all())
    variants = session.execute(
        select(Variant.id, Variant.sku, Variant.price_amount, Variant.currency,
               Variant.product_id)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.active.is_(True), Product.status == ProductStatus.active)
        .order_by(Variant.sku)).all()
    stock = {(lid, vid): q for lid, vid, q in session.execute(
        select(StockLevel.location_id, StockLevel.variant_id, StockLevel.on_hand)
        .where(StockLevel.location_id.in_(locations.values())))}
    images = item_images(session, [(v.id, v.product_id) for v in variants], media_url=media_url)
    return [FeedRow(code, sku, availability_of(q := stock.get((locations[code], vid), 0)), q,
                    feed_price(price, currency), images.get(vid, ""))
            for code in stores for vid, sku, price, currency, _ in variants]


def feed_tsv(rows: Iterable[FeedRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(FEED_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, c) for c in FEED_COLUMNS])
    return out.getvalue()


def feed_json(rows: Iterable[FeedRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


@dataclass(frozen=True)
class Feed:
    version: str
    rows: list[FeedRow]

    @property
    def etag(self) -> str:
        return f'"inv-{self.version}"'


class FeedCache:
    """The last feed built, kept per process and rebuilt only when the stock version moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._feed: Feed | None = None
        self.builds = 0

    def get(self, session: Session, *, media_url: str = "/media") -> Feed:
        version = stock_version(session)
        with self._lock:
            if self._feed is not None and self._feed.version == version:
                return self._feed
        feed = Feed(version, feed_rows(session, media_url=media_url))
        with self._lock:
            self._feed = feed
            self.builds += 1
        return feed


def feed_by_store(rows: Iterable[FeedRow]) -> Mapping[str, list[FeedRow]]:
    grouped: dict[str, list[FeedRow]] = {}
    for row in rows:
        grouped.setdefault(row.store_code, []).append(row)
    return grouped
