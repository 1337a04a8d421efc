"""Order arithmetic, without a database."""

import pytest

from dropline.errors import InvalidInput
from dropline.pricing import PricedLine, order_totals, reconciles


def line(price, qty, currency="GBP", variant=1):
    return PricedLine(variant, price, qty, currency)


def test_totals_add_lines_and_flat_shipping_below_the_threshold():
    totals = order_totals([line(1250, 2), line(999, 1, variant=2)], currency="GBP",
                          flat_shipping=395, free_shipping_threshold=5000)
    assert (totals.subtotal_amount, totals.shipping_amount, totals.total_amount) == (
        3499, 395, 3894)


def test_shipping_is_free_from_the_threshold_exactly():
    totals = order_totals([line(2500, 2)], currency="GBP", flat_shipping=395,
                          free_shipping_threshold=5000)
    assert totals.shipping_amount == 0 and totals.total_amount == 5000


def test_discount_is_subtracted_and_bounded_by_the_subtotal():
    totals = order_totals([line(3000, 1)], currency="GBP", flat_shipping=395,
                          free_shipping_threshold=5000, discount_amount=500)
    assert totals.total_amount == 3000 - 500 + 395
    with pytest.raises(InvalidInput):
        order_totals([line(3000, 1)], currency="GBP", flat_shipping=0,
                     free_shipping_threshold=0, discount_amount=3001)


def test_mixed_currencies_and_empty_orders_are_refused():
    with pytest.raises(InvalidInput, match="EUR"):
        order_totals([line(100, 1), line(100, 1, "EUR", 2)], currency="GBP", flat_shipping=0,
                     free_shipping_threshold=0)
    with pytest.raises(InvalidInput, match="empty"):
        order_totals([], currency="GBP", flat_shipping=0, free_shipping_threshold=0)


def test_reconciles_detects_any_inconsistent_amount():
    good = dict(subtotal_amount=2500, discount_amount=0, shipping_amount=395,
                total_amount=2895, line_totals=[(1000, 2, 2000), (500, 1, 500)])
    assert reconciles(**good)
    assert not reconciles(**{**good, "total_amount": 2894})
    assert not reconciles(**{**good, "subtotal_amount": 2600, "total_amount": 2995})
    assert not reconciles(**{**good, "line_totals": [(1000, 2, 2100), (500, 1, 400)]})
