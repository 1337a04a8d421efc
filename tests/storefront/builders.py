"""Builders for storefront tests: form-shaped checkout input, counting orders and charges."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from dropline.db import Database
from dropline.orders.models import Order
from dropline.payments.models import LocalProviderCharge, Payment
from tests.builders import ADDRESS, GOOD_PM

# As the page posts it once /static/pay/local.js has tokenised the card.
CHECKOUT_FORM: dict[str, Any] = {
    **{k: v for k, v in ADDRESS.items()}, "payment_method": GOOD_PM, "delivery": "central",
}


def counts(db: Database) -> dict[str, int]:
    """Orders, shop payments and the card provider's own charges and refunds (its ledger,
    without the tokens it issued)."""
    with db.transaction() as session:
        return {name: session.scalar(select(func.count()).select_from(model).where(*where))
                or 0 for name, model, where in (
                    ("orders", Order, ()), ("payments", Payment, ()),
                    ("charges", LocalProviderCharge, (LocalProviderCharge.kind != "card",)))}
