"""Discount-code builders for tests."""

from __future__ import annotations

from typing import Any

from dropline.clock import Clock
from dropline.db import Database
from dropline.discounts import service
from dropline.discounts.rules import DiscountKind


def make_code(db: Database, clock: Clock, *, code: str = "SPRING10",
              kind: DiscountKind = DiscountKind.percentage, percent: int = 10,
              **spec: Any) -> int:
    with db.transaction() as session:
        return service.create_code(session, clock=clock, spec=service.CodeSpec(
            code=code, kind=kind, percent=percent, currency="GBP", **spec)).id
