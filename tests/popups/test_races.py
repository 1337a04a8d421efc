"""Two counters selling the pop-up's last unit at the same instant: one sale, one refusal,
never a negative stock row (real concurrent transactions; PostgreSQL in CI)."""

from __future__ import annotations

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.errors import OutOfStock
from dropline.locations.models import Location, StockLevel
from dropline.orders.models import Order, OrderStatus
from dropline.payments.provider import TerminalReading
from dropline.popups import counter
from tests.builders import card_of
from tests.orders.test_races import race
from tests.popups.support import open_popup


def test_the_last_unit_at_a_pop_up_is_sold_once(db, clock, settings):
    shop = open_popup(db, clock, stock=(1, 1))
    provider = LocalCardProvider(db.sessions, clock)

    def sell(i: int) -> int:
        return counter.sell(db, clock=clock, settings=settings, provider=provider,
                            request=counter.CounterSaleRequest(
                                popup_code=shop.code, lines=[(shop.variants[0], 1)],
                                reading=TerminalReading(
                                    "term_a", card_of()),
                                email=f"racer{i}@example.com", name="",
                                sale_reference=f"race-{i}"))

    results = race(4, sell)

    sold = [r for r in results if isinstance(r, int)]
    assert len(sold) == 1, results
    assert all(isinstance(r, OutOfStock) for r in results if not isinstance(r, int))
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order).where(
            Order.status == OrderStatus.paid)) == 1
        assert session.scalar(select(StockLevel.on_hand).join(
            Location, Location.id == StockLevel.location_id).where(
            Location.code == shop.code, StockLevel.variant_id == shop.variants[0])) == 0
