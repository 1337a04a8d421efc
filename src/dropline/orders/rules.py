"""Pure order arithmetic: what every order event carries. Priced lines and totals live in
``dropline.pricing`` (below carts and orders); they are re-exported here for the modules that
still import them from ``orders.rules``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dropline.pricing import PricedLine, Totals, order_totals, reconciles, shipping_for

__all__ = ["PricedLine", "Totals", "order_event_payload", "order_totals", "reconciles",
           "shipping_for"]


def order_event_payload(*, order_id: int, total_amount: int, currency: str,
                        acquisition_source: str, acquisition_campaign: str,
                        product_families: Iterable[str], fulfilment_path: str) -> dict[str, Any]:
    """What every order event carries, so telemetry can cut by source, family and path."""
    return {
        "order_id": order_id, "total_amount": total_amount, "currency": currency,
        "acquisition_source": acquisition_source, "acquisition_campaign": acquisition_campaign,
        "product_families": sorted(set(product_families)), "fulfilment_path": fulfilment_path,
    }
