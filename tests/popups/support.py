"""Builders for the pop-up tests: a hub with stock, a pop-up stocked from it and open."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from dropline.clock import Clock
from dropline.db import Database
from dropline.locations.models import Location, LocationKind
from dropline.popups import service
from tests.builders import GOOD_PM, make_location, make_product

# The reader hands the card to the provider and the sale names it by the reference it got.
TAP = {"terminal_id": "term_popup-test", "entry_mode": "contactless", "payment_method": GOOD_PM}


@dataclass(frozen=True)
class Shop:
    code: str
    hub: str
    variants: list[int]  # each priced 4200, 2500 in order


def make_popup_location(db: Database, *, code: str, lat: float = 51.52,
                        lon: float = -0.075) -> int:
    with db.transaction() as session:
        location = Location(code=code, name=f"{code} pop-up", kind=LocationKind.pop_up,
                            address="Old Spitalfields Market, Brushfield Street, London E1 6EW",
                            latitude=lat, longitude=lon, active=True)
        session.add(location)
        session.flush()
        return location.id


def open_popup(db: Database, clock: Clock, *, code: str = "popup-test", hub: str = "central",
               stock: tuple[int, ...] = (10, 5), hub_stock: int = 20,
               make_hub: bool = True) -> Shop:
    """A hub holding ``hub_stock`` of two products, a pop-up holding ``stock`` of them
    (transferred from the hub), open."""
    if make_hub:
        make_location(db, code=hub)
    variants = [make_product(db, clock, name=name, price=price, stock=hub_stock, location=hub,
                             family=family)[1]
                for name, price, family in (("Fig Leaf " + uuid.uuid4().hex[:4], 4200,
                                             "eau-de-parfum"),
                                            ("Fig Candle " + uuid.uuid4().hex[:4], 2500,
                                             "candles"))]
    make_popup_location(db, code=code)
    with db.transaction() as session:
        service.create_popup(session, clock=clock, location_code=code, hub_code=hub,
                             opens_at=clock.now(), closes_at=clock.now() + timedelta(days=3))
        service.transfer_in(session, clock=clock, code=code,
                            quantities=dict(zip(variants, stock, strict=True)))
        service.open_popup(session, clock=clock, code=code)
    return Shop(code, hub, variants)


def sale_body(variant_id: int, quantity: int = 1, *, email: str = "ada@example.com",
              card: str = GOOD_PM, code: str = "popup-test") -> dict:
    return {"lines": [{"variant_id": variant_id, "quantity": quantity}], "email": email,
            "terminal": {**TAP, "terminal_id": f"term_{code}", "payment_method": card}}
