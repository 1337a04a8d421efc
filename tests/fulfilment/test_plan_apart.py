"""Route planning holds no transaction while the solver runs (issue 20): on SQLite every
transaction takes the write lock, so a plan solved inside one held every other request, and a
product listing failed with "database is locked". Synchronised with events, not sleeps."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dropline.adapters.routing import PyVRPSolver
from dropline.errors import InvalidState
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment.models import RoutePlanRow
from dropline.fulfilment.planning import plan_window_apart
from tests.builders import api_token

from .builders import HACKNEY, make_item, make_network, make_orders, make_windows


class HeldSolver:
    """Solves like the real solver, but first says it has started and waits to be let go."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.real = PyVRPSolver(max_iterations=200)

    def solve(self, problem: Any, *, max_seconds: float, seed: int = 0) -> Any:
        self.started.set()
        assert self.release.wait(timeout=30), "the test never let the solver go"
        return self.real.solve(problem, max_seconds=max_seconds, seed=seed)


def _book(db, clock, window_id: int, count: int) -> None:
    orders = make_orders(db, clock, count)
    with db.transaction() as session:
        for n, order in enumerate(orders):
            point = R.GeoPoint(HACKNEY.latitude + 0.001 * n, HACKNEY.longitude)
            service.book_window(session, clock=clock, window_id=window_id, order_id=order,
                                destination=point, weight_grams=1_000, label=f"E8 {order}")


@pytest.fixture
def window(db, clock) -> int:
    make_network(db, clock)
    make_item(db, clock)
    window_id = make_windows(db)[-1]
    _book(db, clock, window_id, 3)
    return window_id


def test_a_product_listing_answers_while_a_route_plan_runs(client: TestClient, db, clock,
                                                           window: int) -> None:
    solver = HeldSolver()
    client.app.state.services.solver = solver  # type: ignore[attr-defined]
    headers = api_token(db, clock, "fulfilment:manage")
    answers: dict[str, Any] = {}

    def plan() -> None:
        planner = TestClient(client.app, raise_server_exceptions=False)
        answers["plan"] = planner.post(f"/api/v1/admin/fulfilment/windows/{window}/plan",
                                       json={"max_seconds": 1}, headers=headers)

    planning = threading.Thread(target=plan)
    planning.start()
    try:
        assert solver.started.wait(timeout=30), "the plan never reached the solver"
        listing = client.get("/api/v1/products")  # while the solver is held
        assert listing.status_code == 200, listing.text
        assert "plan" not in answers  # the plan was still running
    finally:
        solver.release.set()
        planning.join(timeout=60)
    assert answers["plan"].status_code == 200, answers["plan"].text
    assert sum(len(r["stops"]) for r in answers["plan"].json()["routes"]) == 3


def test_a_window_booked_while_it_was_solved_is_not_stored_with_a_stale_plan(db, clock,
                                                                            window: int) -> None:
    solver = HeldSolver()
    failure: list[BaseException] = []

    def plan() -> None:
        try:
            plan_window_apart(db, clock=clock, window_id=window, solver=solver, max_seconds=1)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failure.append(exc)

    planning = threading.Thread(target=plan)
    planning.start()
    try:
        assert solver.started.wait(timeout=30)
        _book(db, clock, window, 1)  # a booking lands while the solver runs
    finally:
        solver.release.set()
        planning.join(timeout=60)
    assert len(failure) == 1 and isinstance(failure[0], InvalidState)
    with db.transaction() as session:
        assert session.scalar(select(RoutePlanRow).where(RoutePlanRow.window_id == window)) \
            is None
