"""Decisions on constructed inputs with known answers."""

from __future__ import annotations

import datetime as dt

import pytest

from dropline.telemetry.cohorts import GroupValue
from dropline.telemetry.decisions import (
    ProductionRunInputs,
    SubsidyCustomer,
    cac_ceilings,
    cash_forecast,
    delivery_subsidy_decision,
)

# --------------------------------------------------------------------------- CAC ceilings


def test_cac_ceiling_is_ninety_day_ltv_times_margin_over_target_ratio_rounded_down():
    values = [GroupValue("limited-edition", 25, 3, 10_000, 0.4),
              GroupValue("candles", 40, 0, 10_001, 0.3)]

    limited, candles = cac_ceilings(values, gross_margin=0.6, target_ratio=3,
                                    tagged={"limited-edition"})

    assert (limited.ceiling, limited.basis, limited.formula) == (
        2_000, "drop tag", "10000 x 0.6 / 3")
    assert (limited.customers, limited.pending, limited.ltv_90) == (25, 3, 10_000)
    assert (candles.ceiling, candles.basis) == (2_000, "product family")  # 2000.2 -> 2000
    assert limited.note is None


def test_cac_ceiling_takes_a_margin_per_drop_type_and_flags_thin_or_empty_groups():
    values = [GroupValue("collab", 5, 0, 9_000, 0.2), GroupValue("restock", 0, 7, None, None)]

    collab, restock = cac_ceilings(values, gross_margin={"collab": 0.5}, target_ratio=2.5)

    assert collab.ceiling == 1_800 and collab.gross_margin == 0.5
    assert collab.note == "only 5 customers with a full 90 days: a rough ceiling"
    assert restock.ceiling is None and restock.gross_margin == 0.6
    assert restock.note == "no customer of this type is 90 days old yet: no ceiling"


@pytest.mark.parametrize("kwargs", [{"target_ratio": 0}, {"gross_margin": 1.5}])
def test_cac_ceiling_refuses_meaningless_inputs(kwargs):
    with pytest.raises(ValueError):
        cac_ceilings([GroupValue("x", 30, 0, 100, 0.1)], **kwargs)


# ------------------------------------------------------------------------ delivery subsidy


def _customers() -> list[SubsidyCustomer]:
    def c(subsidised: bool, stratum: str, retained: bool, value: int) -> SubsidyCustomer:
        return SubsidyCustomer(subsidised, stratum, retained, value)

    return [
        # A: subsidised mean 300 (200, 400), retained 1 of 2; unsubsidised 100 each, none back
        c(True, "A", True, 200), c(True, "A", False, 400),
        c(False, "A", False, 100), c(False, "A", False, 100), c(False, "A", False, 100),
        # B: subsidised 500 and back; unsubsidised mean 200 (300, 100), one back
        c(True, "B", True, 500), c(False, "B", True, 300), c(False, "B", False, 100),
        # C: nobody to compare with
        c(True, "C", True, 9_999),
    ]


def test_subsidy_effect_is_the_stratified_difference_with_a_normal_interval():
    decision = delivery_subsidy_decision(_customers(), cost_per_subsidy=20, gross_margin=0.5)

    value = decision.value_effect
    # weights 2/3 (A) and 1/3 (B): 2/3 * 200 + 1/3 * 300; variance 4/9 * 20000/2 + 1/9 * 20000/2
    assert value.estimate == pytest.approx(700 / 3)
    assert value.high - value.estimate == pytest.approx(1.959964 * (50_000 / 9) ** 0.5, rel=1e-6)
    assert decision.retention_effect.estimate == pytest.approx(0.5)
    assert (decision.subsidised, decision.not_subsidised, decision.strata,
            decision.unmatched_subsidised) == (3, 5, 2, 1)
    assert decision.retention_subsidised == pytest.approx(2 / 3)
    assert decision.retention_not_subsidised == pytest.approx(1 / 5)
    # net gain low end: (233.33 - 146.09) * 0.5 - 20 = 23.6 > 0
    assert decision.net_gain.low == pytest.approx(23.62, abs=0.01)
    assert decision.recommend is True and decision.reason.startswith("yes:")


@pytest.mark.parametrize(("cost", "reason"), [
    (200, "no: the extra 90-day gross profit is below the subsidy's cost"),
    (100, "no, not yet: the effect cannot be told apart from break-even"),
])
def test_subsidy_is_refused_when_it_costs_more_or_the_evidence_is_too_thin(cost, reason):
    decision = delivery_subsidy_decision(_customers(), cost_per_subsidy=cost, gross_margin=0.5)

    assert decision.recommend is False
    assert decision.reason.startswith(reason)


def test_subsidy_without_comparable_customers_says_so():
    decision = delivery_subsidy_decision(
        [SubsidyCustomer(False, "A", True, 100), SubsidyCustomer(True, "B", True, 100)],
        cost_per_subsidy=100)

    assert decision.recommend is False and decision.value_effect is None
    assert decision.reason.startswith("no comparison possible")
    assert decision.unmatched_subsidised == 1


# ---------------------------------------------------------------------------- cash forecast


def _run(**changes) -> ProductionRunInputs:
    inputs = dict(members=100, member_uptake=0.5, waitlist=40, waitlist_conversion=0.25,
                  past_sell_through=[30, 50], unit_cost=2_000, unit_price=5_000,
                  lead_time_weeks=3, start=dt.date(2026, 6, 1), deposit_share=0.5,
                  sell_curve=(0.5, 0.25, 0.25), safety_share=0.1)
    return ProductionRunInputs(**{**inputs, **changes})


def test_cash_forecast_times_the_deposit_the_balance_and_the_sales_week_by_week():
    forecast = cash_forecast(_run())

    # demand 50 members + 10 waitlist + 40 open sale = 100, +10 % safety = 110 units
    assert (forecast.demand_members, forecast.demand_waitlist, forecast.demand_open_sale,
            forecast.units) == (50.0, 10.0, 40.0, 110)
    assert (forecast.cost_total, forecast.revenue_total) == (220_000, 500_000)
    assert [(w.week, w.starts.isoformat(), w.cash_out, w.cash_in, w.cumulative)
            for w in forecast.weeks] == [
        (0, "2026-06-01", 110_000, 0, -110_000),
        (1, "2026-06-08", 0, 0, -110_000),
        (2, "2026-06-15", 0, 0, -110_000),
        (3, "2026-06-22", 110_000, 400_000, 180_000),  # 60 committed + 20 open-sale units
        (4, "2026-06-29", 0, 50_000, 230_000),
        (5, "2026-07-06", 0, 50_000, 280_000),
    ]
    assert (forecast.peak_cash_need, forecast.peak_week, forecast.break_even_week) == (
        110_000, 0, 3)


def test_cash_forecast_nets_refunds_and_says_when_a_run_never_pays_back():
    forecast = cash_forecast(_run(unit_price=1_000, refund_rate=0.5, past_sell_through=[]))

    assert forecast.units == 66  # 60 committed, +10 % safety, rounded up
    assert forecast.revenue_total == 30_000  # 60 units x 1000 x (1 - 0.5)
    assert forecast.break_even_week is None
    assert forecast.notes == [
        "no past runs: open-sale demand taken as zero",
        "the run does not pay back within the forecast: revenue below cost"]


def test_cash_forecast_refuses_a_sell_curve_that_does_not_add_up():
    with pytest.raises(ValueError, match="add up to 1"):
        cash_forecast(_run(sell_curve=(0.5, 0.2)))
