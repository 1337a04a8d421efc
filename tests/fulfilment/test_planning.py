"""Planning a window at cutoff: the stored routes respect capacity, the window and the shifts,
checked by the independent checker (``feasibility.py``) and again on the stored route sheet
in wall-clock terms, not by the solver's own claim."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from dropline.adapters.routing import PyVRPSolver
from dropline.errors import InvalidState
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment.jobs import run_fulfilment_jobs
from dropline.fulfilment.models import DeliveryWindow, WindowStatus
from dropline.fulfilment.planning import plan_window, route_sheet, sheet_sequences
from dropline.fulfilment.routemap import route_map_svg

from .builders import HACKNEY, make_network, make_orders, make_windows
from .feasibility import check_plan, check_routes

SOLVER = PyVRPSolver(max_iterations=800)
SERVICE = timedelta(seconds=180)


def book_around_hackney(db, clock, window_id: int, count: int, *, weight: int,
                        seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    orders = make_orders(db, clock, count)
    with db.transaction() as session:
        for order in orders:
            point = R.GeoPoint(HACKNEY.latitude + rng.uniform(-0.02, 0.02),
                               HACKNEY.longitude + rng.uniform(-0.03, 0.03))
            service.book_window(session, clock=clock, window_id=window_id, order_id=order,
                                destination=point, weight_grams=weight, label=f"E8 {order}")
    return orders


def assert_sheet_keeps_every_rule(sheet, window, *, capacity: int, shift_start: datetime,
                                  shift_end: datetime) -> None:
    for route in sheet.routes:
        assert route.load_grams == sum(s.weight_grams for s in route.stops) <= capacity
        assert shift_start <= route.departs_at and route.returns_at <= shift_end
        etas = [s.eta for s in route.stops]
        assert etas == sorted(etas)
        for eta in etas:
            # Service starts in the window and is over by its end.
            assert window.starts_at <= eta and eta + SERVICE <= window.ends_at


def test_a_busy_window_is_planned_within_capacity_window_and_shift(db, clock):
    make_network(db, clock, vehicles=2, capacity_grams=36_000)
    window_id = make_windows(db, capacity=40)[-1]  # 18:00-20:00, cutoff 16:00
    orders = book_around_hackney(db, clock, window_id, 30, weight=2_000)
    clock.advance(hours=6)  # past the cutoff

    with db.transaction() as session:
        planned = plan_window(session, clock=clock, window_id=window_id, solver=SOLVER,
                              max_seconds=10)

    report = check_plan(planned.problem, planned.plan)
    assert report.violations == [] and planned.plan.feasible
    assert len(planned.plan.routes) == 2  # 60 kg of parcels, 36 kg per bike
    with db.transaction() as session:
        sheet = route_sheet(session, window_id=window_id)
        window = session.get(DeliveryWindow, window_id)
        assert window.status is WindowStatus.planned
    assert check_routes(planned.problem, sheet_sequences(sheet),
                        unassigned=[s.booking_id for s in sheet.unassigned]).feasible
    assert sorted(s.order_id for r in sheet.routes for s in r.stops) + \
        [s.order_id for s in sheet.unassigned] == sorted(orders)
    day = datetime(2026, 3, 2, tzinfo=UTC)
    assert_sheet_keeps_every_rule(sheet, window, capacity=36_000,
                                  shift_start=day + timedelta(hours=8),
                                  shift_end=day + timedelta(hours=20))
    # Each route's cost is rounded on its own: the total agrees to a penny a route.
    assert abs(sheet.cost_amount - sum(r.cost_amount for r in sheet.routes)) <= len(sheet.routes)


def test_a_shift_ending_mid_window_leaves_what_cannot_be_reached_unassigned(db, clock):
    make_network(db, clock, vehicles=1, shift=(time(8), time(18, 45)))
    window_id = make_windows(db)[-1]  # 18:00-20:00
    book_around_hackney(db, clock, window_id, 20, weight=500, seed=2)
    clock.advance(hours=6)

    with db.transaction() as session:
        planned = plan_window(session, clock=clock, window_id=window_id, solver=SOLVER,
                              max_seconds=10)
        sheet = route_sheet(session, window_id=window_id)
        window = session.get(DeliveryWindow, window_id)

    report = check_plan(planned.problem, planned.plan)
    assert report.violations == []
    assert 0 < len(planned.plan.unassigned) < 20
    day = datetime(2026, 3, 2, tzinfo=UTC)
    assert_sheet_keeps_every_rule(sheet, window, capacity=60_000,
                                  shift_start=day + timedelta(hours=8),
                                  shift_end=day + timedelta(hours=18, minutes=45))
    assert len(sheet.unassigned) == len(planned.plan.unassigned)


def test_planning_twice_is_refused_unless_replanning(db, clock):
    make_network(db, clock)
    window_id = make_windows(db)[-1]
    book_around_hackney(db, clock, window_id, 3, weight=500)
    with db.transaction() as session:
        plan_window(session, clock=clock, window_id=window_id, solver=SOLVER, max_seconds=2)

    with pytest.raises(InvalidState, match="planned already"), db.transaction() as session:
        plan_window(session, clock=clock, window_id=window_id, solver=SOLVER, max_seconds=2)
    with db.transaction() as session:
        again = plan_window(session, clock=clock, window_id=window_id, solver=SOLVER,
                            max_seconds=2, replan=True)
        assert again.plan.feasible


def test_the_job_plans_windows_past_cutoff_once_and_leaves_the_others_open(db, clock):
    make_network(db, clock)
    windows = make_windows(db)
    book_around_hackney(db, clock, windows[-1], 4, weight=500)
    clock.advance(hours=2)  # 12:00: windows up to the 14:00 one are past their cutoff

    first = run_fulfilment_jobs(db, clock=clock, solver=SOLVER, seconds_per_window=2)
    second = run_fulfilment_jobs(db, clock=clock, solver=SOLVER, seconds_per_window=2)

    with db.transaction() as session:
        statuses = dict(session.execute(select(DeliveryWindow.id, DeliveryWindow.status)).all())
    assert first.windows_planned == windows[:4] and second.windows_planned == []
    assert [statuses[w] for w in windows] == [WindowStatus.planned] * 4 + [WindowStatus.open] * 2


def test_the_route_map_draws_each_route_and_escapes_labels(db, clock):
    make_network(db, clock)
    window_id = make_windows(db)[-1]
    (order,) = make_orders(db, clock, 1)
    with db.transaction() as session:
        service.book_window(session, clock=clock, window_id=window_id, order_id=order,
                            destination=R.GeoPoint(51.548, -0.075), weight_grams=500,
                            label="<b>E8</b>")
        plan_window(session, clock=clock, window_id=window_id, solver=SOLVER, max_seconds=2)
        svg = route_map_svg(route_sheet(session, window_id=window_id))

    assert svg.startswith("<svg") and svg.count("<path d=\"M") >= 2  # a route and the scale bar
    assert "<b>" not in svg and "&lt;b&gt;E8&lt;/b&gt;" in svg
    assert "km</text>" in svg
