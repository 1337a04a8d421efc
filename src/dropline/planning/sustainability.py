"""Sustainability figures per drop: units left over (made and not sold: the waste a cap that
is too big creates), units made to order (restocked after demand showed itself, so made for
a buyer rather than for a shelf), how long it took to sell through, and the running totals.
Pure: one row per drop in, rows with totals out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime


@dataclass(frozen=True)
class DropFacts:
    slug: str
    opened_at: datetime
    ended: bool
    cap: int  # final cap, restocks included
    units_sold: int
    units_made_to_order: int  # restocked after the drop showed more demand than its cap
    sold_out_at: datetime | None


@dataclass(frozen=True)
class SustainabilityRow:
    slug: str
    opened_at: str
    cap: int
    units_sold: int
    units_left_over: int | None  # None while the drop is still on
    units_made_to_order: int
    sell_through: float
    sell_through_hours: float | None  # None if it never sold out
    total_left_over: int
    total_made_to_order: int
    total_sold: int
    left_over_share: float  # of all units made so far, the share not sold

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def sustainability_rows(drops: Sequence[DropFacts]) -> list[SustainabilityRow]:
    rows: list[SustainabilityRow] = []
    left_total = mto_total = sold_total = made_total = 0
    for d in sorted(drops, key=lambda d: d.opened_at):
        left = max(d.cap - d.units_sold, 0) if d.ended else None
        left_total += left or 0
        mto_total += d.units_made_to_order
        sold_total += d.units_sold
        made_total += d.cap if d.ended else d.units_sold
        hours = ((d.sold_out_at - d.opened_at).total_seconds() / 3600
                 if d.sold_out_at else None)
        rows.append(SustainabilityRow(
            d.slug, d.opened_at.isoformat(), d.cap, d.units_sold, left, d.units_made_to_order,
            round(d.units_sold / d.cap, 4) if d.cap else 0.0,
            round(hours, 2) if hours is not None else None, left_total, mto_total, sold_total,
            round(left_total / made_total, 4) if made_total else 0.0))
    return rows
