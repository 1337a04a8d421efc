"""The carrier port: what shipping an order asks of whoever carries the parcel.

A carrier books a parcel and answers with its tracking number (and, for carriers that sell
labels, the label). Orders states the question here; the implementations are adapters
(``dropline.adapters.carriers``), chosen by the composition root and handed in as
``Services.carriers`` (name -> carrier). The built-in ``manual`` carrier records what the
operator says (a tracking number from a post-office counter, or none for a hand delivery).

``book`` is called outside any database transaction (``orders.flows.ship_order``) with a
``reference`` stable per shipment, which a carrier API that accepts an idempotency key should
be sent, so a retried booking after a crash does not buy a second label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Carrier", "CarrierBooking", "ParcelRequest"]


@dataclass(frozen=True)
class ParcelRequest:
    shipment_id: int
    order_id: int
    reference: str  # stable per shipment: "dropline-shipment-<id>"
    ship_to: dict[str, Any]
    ship_from_location: str  # the location code the parcel leaves from
    items: int  # units in the parcel
    service: str = ""  # a carrier's service level ("tracked-48"), "" for its default
    tracking_number: str | None = None  # given by the operator (manual carrier)


@dataclass(frozen=True)
class CarrierBooking:
    tracking_number: str
    tracking_url: str = ""
    service: str = ""
    label_pdf: bytes | None = field(default=None, repr=False)


class Carrier(Protocol):
    name: str

    def book(self, parcel: ParcelRequest) -> CarrierBooking:
        """Books the parcel; raises InvalidInput for what the carrier refuses (an address it
        cannot serve) and OSError when it cannot be reached (retry with the same request)."""
        ...
