"""Closing a pop-up: the count against what the system expected, the variances, every counted
unit transferred back to the hub; and a 48-hour restock from a micro-factory."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dropline.adapters.payments import LocalCardProvider
from dropline.errors import InvalidState
from dropline.fulfilment.models import MovementKind, MovementStatus, StockMovement
from dropline.fulfilment.service import complete_due_movements
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.payments.provider import TerminalReading
from dropline.popups import counter, service
from dropline.popups.models import PopupCount
from tests.builders import card_of, make_location
from tests.popups.support import open_popup


def _stock(db, code: str) -> dict[int, int]:
    with db.transaction() as session:
        return dict(session.execute(select(StockLevel.variant_id, StockLevel.on_hand).join(
            Location, Location.id == StockLevel.location_id).where(Location.code == code)).all())


def _sell(db, clock, settings, shop, variant_id: int, quantity: int, ref: str) -> None:
    counter.sell(db, clock=clock, settings=settings,
                 provider=LocalCardProvider(db.sessions, clock),
                 request=counter.CounterSaleRequest(
                     popup_code=shop.code, lines=[(variant_id, quantity)],
                     reading=TerminalReading("term_x", card_of(),
                                             "chip"),
                     email="b@example.com", name="", sale_reference=ref))


def test_close_reconciles_expected_against_counted_and_sends_the_count_back(db, clock, settings):
    shop = open_popup(db, clock, stock=(10, 5))  # hub keeps 10 and 15
    fig, candle = shop.variants
    _sell(db, clock, settings, shop, fig, 3, "r1")  # expected: fig 7, candle 5

    with db.transaction() as session:
        report = service.close_popup(session, clock=clock, code=shop.code,
                                     counted={fig: 6, candle: 5})

    assert [(li.variant_id, li.expected, li.counted, li.variance) for li in report.lines] == [
        (fig, 7, 6, -1), (candle, 5, 5, 0)]
    assert report.variance_units == -1 and report.transferred_back == 11
    assert _stock(db, shop.code) == {fig: 0, candle: 0}  # the pop-up ends empty
    clock.advance(hours=4)
    with db.transaction() as session:
        complete_due_movements(session, clock=clock)
        counts = session.scalars(select(PopupCount).order_by(PopupCount.variant_id)).all()
        assert [(c.expected, c.counted, c.transferred_back) for c in counts] == [(7, 6, 6),
                                                                                (5, 5, 5)]
    assert _stock(db, "central") == {fig: 10 + 6, candle: 15 + 5}
    with db.transaction() as session, pytest.raises(InvalidState):
        service.close_popup(session, clock=clock, code=shop.code, counted={})


def test_an_uncounted_variant_counts_as_missing(db, clock):
    shop = open_popup(db, clock, stock=(4, 2))
    with db.transaction() as session:
        report = service.close_popup(session, clock=clock, code=shop.code,
                                     counted={shop.variants[0]: 4})
    assert [li.variance for li in report.lines] == [0, -2]


def test_a_restock_from_the_micro_factory_lands_after_48_hours(db, clock):
    shop = open_popup(db, clock, stock=(2, 2))
    make_location(db, code="factory", kind=LocationKind.micro_factory)
    with db.transaction() as session:
        runs = service.request_restock(session, clock=clock, code=shop.code,
                                       factory_code="factory",
                                       quantities={shop.variants[0]: 12})
        assert [(r.kind, r.due_at) for r in runs] == [
            (MovementKind.production, clock.now() + timedelta(hours=48))]
    clock.advance(hours=47)
    with db.transaction() as session:
        assert complete_due_movements(session, clock=clock) == []
    clock.advance(hours=1)
    with db.transaction() as session:
        complete_due_movements(session, clock=clock)
        assert session.scalar(select(StockMovement.status).where(
            StockMovement.kind == MovementKind.production)) is MovementStatus.completed
    assert _stock(db, shop.code)[shop.variants[0]] == 14
