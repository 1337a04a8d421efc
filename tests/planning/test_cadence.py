"""The cadence planner lands near the best gap and never on a clash or an unready run."""

from __future__ import annotations

from datetime import date, timedelta

from dropline.planning.cadence import Busy, PlanningInputs, plan_cadence
from dropline.planning.model import CycleModel, Interval, RecoveryCurve, SeriesFit

TODAY = date(2026, 3, 2)
CURVE = RecoveryCurve(peak=400.0, tau_recover=12.0, tau_fade=90.0)  # best gap ~25.7 days


def _model() -> CycleModel:
    fixed = Interval(1, 1, 1)
    best = Interval(CURVE.best_gap_days, 22, 29)
    return CycleModel("all", 300, 10, SeriesFit(8.0, 2.0, 5.0, (100.0,) * 10), CURVE, fixed,
                      fixed, fixed, Interval(CURVE.recovery_days, 25, 31), best)


def _inputs(**changes) -> PlanningInputs:
    base = {"today": TODAY, "past_drop_days": [TODAY - timedelta(days=5)], "production_days": 2,
                "transfer_days": 1, "units_per_touch": 0.1}
    return PlanningInputs(**{**base, **changes})


def test_with_nothing_in_the_way_the_top_date_is_the_best_gap_after_the_last_drop():
    plan = plan_cadence(_model(), _inputs())

    top = plan.recommended[0]
    assert top.gap_days in (25, 26)  # round(25.7)
    assert top.day == TODAY - timedelta(days=5) + timedelta(days=top.gap_days)
    assert "25 days" in plan.why or "26 days" in plan.why
    assert top.expected_demand == top.expected_attention * 0.1


def test_the_planner_avoids_a_date_that_clashes_with_a_scheduled_drop():
    best = TODAY - timedelta(days=5) + timedelta(days=26)
    clean = plan_cadence(_model(), _inputs())
    plan = plan_cadence(_model(), _inputs(scheduled=[("rival-drop", best)]))

    assert clean.recommended[0].day in (best, best - timedelta(days=1))
    for c in plan.recommended:
        assert abs((c.day - best).days) >= 7
    clash = next(c for c in plan.candidates if c.day == best)
    assert not clash.feasible and "clashes with rival-drop" in clash.reasons[0]
    # A scheduled drop resets the cycle: the top date now counts from the rival drop.
    assert plan.recommended[0].gap_days >= 7


def test_the_planner_avoids_a_date_whose_production_run_cannot_be_made():
    best = TODAY - timedelta(days=5) + timedelta(days=26)
    # The factory is busy for a week just before the best day.
    busy = Busy(best - timedelta(days=8), best - timedelta(days=1), "a hub restock run")
    plan = plan_cadence(_model(), _inputs(factory_busy=[busy]))

    top = plan.recommended[0]
    assert top.day != best
    ruled_out = next(c for c in plan.candidates if c.day == best)
    assert not ruled_out.feasible
    assert any("production" in r for r in ruled_out.reasons)
    # Every feasible day is at least the lead time after the factory is free again.
    assert all(c.day >= busy.end + timedelta(days=3) for c in plan.candidates if c.feasible)
    assert "ruled out" in plan.why


def test_a_long_lead_time_pushes_the_first_feasible_date_out():
    plan = plan_cadence(_model(), _inputs(production_days=40, transfer_days=2))

    assert plan.earliest_ready == TODAY + timedelta(days=42)
    assert min(c.day for c in plan.candidates if c.feasible) == plan.earliest_ready
    assert plan.recommended[0].day >= plan.earliest_ready


def test_a_scheduled_drops_own_production_run_blocks_the_factory_for_others():
    scheduled_day = TODAY + timedelta(days=40)
    plan = plan_cadence(_model(), _inputs(scheduled=[("next", scheduled_day)],
                                          production_days=10, transfer_days=1, min_gap_days=1))

    # A drop two days later would need the factory during the scheduled drop's run.
    two_after = next(c for c in plan.candidates if c.day == scheduled_day + timedelta(days=2))
    assert not two_after.feasible
    assert any("the run for next" in r for r in two_after.reasons)
