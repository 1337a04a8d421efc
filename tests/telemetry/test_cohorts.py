"""Cohort tables, curves and 90-day values on constructed purchases with known answers."""

from __future__ import annotations

import datetime as dt

import pytest

from dropline.telemetry.cohorts import (
    Purchase,
    PurchaseLog,
    RefundEntry,
    cohort_curves,
    cohort_table,
    summarise_customers,
    value_by,
)

UTC = dt.UTC
AS_OF = dt.datetime(2026, 6, 1, tzinfo=UTC)


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def shop() -> PurchaseLog:
    """Three customers: two in January (one repeats and is partly refunded), one in April."""
    purchases = [
        # c1, January, Instagram: 10000 on day 0, 5000 on day 15, 3000 on day 74
        Purchase(1, at("2026-01-05"), 10_000, order_id=11, family="candles", source="instagram"),
        Purchase(1, at("2026-01-20"), 5_000, order_id=12, family="refills", source="instagram"),
        Purchase(1, at("2026-03-20"), 3_000, order_id=13, family="candles", source="instagram"),
        # c2, January, Google, a tagged drop delivered through a hub window, subsidised
        Purchase(2, at("2026-01-31"), 8_000, order_id=21, family="eau-de-parfum",
                 source="google", fulfilment_path="hub-window", drop_type="limited-edition",
                 delivery_subsidised=True),
        Purchase(2, at("2026-01-31", 9), 0, order_id=20, family="refills", source="google"),
        # c3, April, Instagram: 5000 on day 0, 1000 on day 10
        Purchase(3, at("2026-04-10"), 5_000, order_id=31, family="candles", source="instagram"),
        Purchase(3, at("2026-04-20"), 1_000, order_id=32, family="candles", source="instagram"),
        Purchase(3, at("2026-06-02"), 9_999, order_id=33, family="candles", source="instagram"),
    ]
    refunds = [RefundEntry(1, at("2026-01-25"), 2_000, order_id=11),
               RefundEntry(3, at("2026-06-03"), 1_000, order_id=32)]
    return PurchaseLog.from_rows(purchases, refunds)


def test_customers_take_their_cuts_from_the_first_paid_purchase():
    customers = summarise_customers(shop(), as_of=AS_OF)

    assert customers.customer_id.tolist() == [1, 2, 3]
    assert customers.attributes["family"].tolist() == ["candles", "eau-de-parfum", "candles"]
    assert customers.attributes["fulfilment"].tolist() == ["central", "hub-window", "central"]
    assert customers.attributes["drop_type"].tolist() == ["candles", "limited-edition",
                                                          "candles"]
    assert customers.attributes["subsidised"].tolist() == ["no", "yes", "no"]


def test_window_revenue_is_net_of_refunds_paid_out_inside_the_window():
    customers = summarise_customers(shop(), as_of=AS_OF)

    assert customers.net_revenue[30].tolist() == [13_000, 8_000, 6_000]
    assert customers.net_revenue[60].tolist() == [13_000, 8_000, 6_000]
    assert customers.net_revenue[90].tolist() == [16_000, 8_000, 6_000]
    assert customers.repeated[30].tolist() == [True, False, True]


def test_monthly_cohorts_show_only_fully_observed_windows_and_say_why_the_rest_are_missing():
    table = cohort_table(summarise_customers(shop(), as_of=AS_OF))

    january, april = table.cohorts
    assert (january.period, january.customers) == ("2026-01", 2)
    assert january.net_revenue == {30: 21_000, 60: 21_000, 90: 24_000}
    assert january.revenue_per_customer == {30: 10_500, 60: 10_500, 90: 12_000}
    assert january.repeat_rate == {30: 0.5, 60: 0.5, 90: 0.5}
    assert january.fully_observed and january.note is None
    assert (april.period, april.customers, april.observed_days) == ("2026-04", 1, 31)
    assert april.revenue_per_customer == {30: 6_000, 60: None, 90: None}
    assert april.repeat_rate == {30: 1.0, 60: None, 90: None}
    assert not april.fully_observed
    assert april.note == ("not yet 90 days old: 60-day, 90-day figures withheld until every "
                          "member's window has passed (complete on 2026-07-30)")
    assert table.notes == ["1 of 2 cohorts are not yet 90 days old (2026-04): their later "
                           "windows are withheld, not zero"]


def test_cohorts_cut_by_source_and_weeks_start_on_monday():
    customers = summarise_customers(shop(), as_of=AS_OF)

    by_source = cohort_table(customers, by=["source"])
    weekly = cohort_table(customers, period="week")

    assert [(c.period, c.cut, c.customers, c.revenue_per_customer[30])
            for c in by_source.cohorts] == [
        ("2026-01", {"source": "google"}, 1, 8_000),
        ("2026-01", {"source": "instagram"}, 1, 13_000),
        ("2026-04", {"source": "instagram"}, 1, 6_000),
    ]
    assert [(c.period, c.period_start.isoformat()) for c in weekly.cohorts] == [
        ("2026-W02", "2026-01-05"), ("2026-W05", "2026-01-26"), ("2026-W15", "2026-04-06")]


def test_an_unknown_cut_is_refused():
    with pytest.raises(ValueError, match="unknown cut colour"):
        cohort_table(summarise_customers(shop(), as_of=AS_OF), by=["colour"])


def test_per_customer_revenue_rounds_half_up_in_minor_units():
    log = PurchaseLog.from_rows([Purchase(i, at("2026-01-05"), amount, order_id=i)
                                 for i, amount in ((1, 1_000), (2, 1), (3, 0))])
    log_two = PurchaseLog.from_rows([Purchase(1, at("2026-01-05"), 1_001, order_id=1),
                                     Purchase(2, at("2026-01-06"), 2, order_id=2)])

    one = cohort_table(summarise_customers(log, as_of=AS_OF)).cohorts[0]
    two = cohort_table(summarise_customers(log_two, as_of=AS_OF)).cohorts[0]

    assert (one.customers, one.revenue_per_customer[30]) == (2, 501)  # 1001 / 2 = 500.5
    assert two.revenue_per_customer[30] == 502  # 1003 / 2 = 501.5


def test_curves_track_cumulative_revenue_and_repeat_share_until_unobserved():
    curves = cohort_curves(summarise_customers(shop(), as_of=AS_OF), step_days=30, steps=3)

    assert curves.ages == [30, 60, 90]
    assert [(r.period, r.values) for r in curves.revenue] == [
        ("2026-01", [10_500.0, 10_500.0, 12_000.0]), ("2026-04", [6_000.0, None, None])]
    assert [(r.period, r.values) for r in curves.repeat] == [
        ("2026-01", [0.5, 0.5, 0.5]), ("2026-04", [1.0, None, None])]


def test_ninety_day_value_counts_only_customers_whose_window_has_passed():
    values = value_by(summarise_customers(shop(), as_of=AS_OF), "source")

    assert [(v.key, v.customers, v.pending, v.revenue_per_customer, v.repeat_rate)
            for v in values] == [("google", 1, 0, 8_000, 0.0), ("instagram", 1, 1, 16_000, 1.0)]


def test_an_empty_log_gives_an_empty_table():
    table = cohort_table(summarise_customers(PurchaseLog.from_rows([]), as_of=AS_OF))

    assert table.cohorts == [] and table.customers == 0 and table.notes == []
