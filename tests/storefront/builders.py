"""Builders for storefront tests: form-shaped checkout input, counting orders and charges."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from dropline.db import Database
from dropline.orders.models import Order
from dropline.payments.models import LocalProviderCharge, Payment
from tests.builders import ADDRESS, GOOD_CARD

CHECKOUT_FORM: dict[str, Any] = {
    **{k: v for k, v in ADDRESS.items()}, "number": GOOD_CARD["number"],
    "exp_month": str(GOOD_CARD["exp_month"]), "exp_year": str(GOOD_CARD["exp_year"]),
    "cvc": GOOD_CARD["cvc"], "delivery": "central",
}


def counts(db: Database) -> dict[str, int]:
    """Orders, shop payments and the card provider's own charges (its ledger)."""
    with db.transaction() as session:
        return {name: session.scalar(select(func.count()).select_from(model)) or 0
                for name, model in (("orders", Order), ("payments", Payment),
                                    ("charges", LocalProviderCharge))}
