"""Carriers behind the carrier port (``dropline.orders.carriers``).

    Carrier (Protocol)   book(parcel) -> CarrierBooking
    └── ManualCarrier    built in: records the tracking number the operator gives (from a
                         counter receipt, a courier's app) or, for a hand delivery, a local
                         reference; no outside call

A carrier with an API (Royal Mail Click & Drop, EasyPost, Shippo) is one more class here with
the same ``book``: it sends ``parcel.reference`` as its idempotency key / order reference,
returns the tracking number, tracking URL and the label PDF, and is added to the root's
``build_carriers`` under its name (docs/capabilities/shipping.md shows one).
"""

from __future__ import annotations

from dropline.errors import InvalidInput
from dropline.orders.carriers import Carrier, CarrierBooking, ParcelRequest

__all__ = ["ManualCarrier", "build_carriers"]


class ManualCarrier:
    """The operator ships by hand; ``tracking_url`` is a template with ``{tracking}`` when
    the parcel went with a known service (e.g. Royal Mail's tracking page)."""

    name = "manual"

    def __init__(self, tracking_url: str = "") -> None:
        self.tracking_url = tracking_url

    def book(self, parcel: ParcelRequest) -> CarrierBooking:
        number = (parcel.tracking_number or "").strip()
        if not number:
            number = f"DL{parcel.shipment_id:08d}"  # a hand delivery: our own reference
        if len(number) > 64 or not number.replace("-", "").replace(" ", "").isalnum():
            raise InvalidInput("a tracking number is up to 64 letters, digits, spaces or "
                               "dashes", field="tracking_number")
        url = self.tracking_url.format(tracking=number) if self.tracking_url else ""
        return CarrierBooking(tracking_number=number, tracking_url=url,
                              service=parcel.service or "manual")


def build_carriers() -> dict[str, Carrier]:
    """The carriers this shop ships with, by name (the composition root calls it)."""
    return {"manual": ManualCarrier()}
