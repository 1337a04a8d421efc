from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dropline.planning.sustainability import DropFacts, sustainability_rows

T = datetime(2026, 1, 1, 18, tzinfo=UTC)


def test_left_over_made_to_order_and_running_totals():
    rows = sustainability_rows([
        DropFacts("b", T + timedelta(days=30), True, 40, 30, 0, None),
        DropFacts("a", T, True, 20, 20, 5, T + timedelta(hours=3)),
        DropFacts("c", T + timedelta(days=60), False, 50, 10, 0, None),  # still on
    ])

    assert [r.slug for r in rows] == ["a", "b", "c"]
    assert [r.units_left_over for r in rows] == [0, 10, None]
    assert rows[0].sell_through_hours == 3.0 and rows[1].sell_through_hours is None
    assert [r.total_left_over for r in rows] == [0, 10, 10]
    assert [r.total_made_to_order for r in rows] == [5, 5, 5]
    assert rows[1].left_over_share == round(10 / 60, 4)
    assert rows[2].left_over_share == round(10 / 70, 4)  # an open drop counts what it sold so far
