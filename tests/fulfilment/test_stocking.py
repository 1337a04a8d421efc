"""Stock where demand is and the cost report on a real database: the positioning plan from
past orders in each hub's reach, accepting its proposals (service, API, CLI), and the cost per
order by week, path and location."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dropline.catalog.models import ConditionGrade
from dropline.cli import app as cli_app
from dropline.fulfilment import stocking
from dropline.fulfilment.models import MovementKind, StockMovement
from dropline.locations.models import Location, LocationKind
from dropline.orders.models import Order, OrderLine
from tests.builders import api_token
from tests.web.support import assert_problem, changed_tables, snapshot

from .builders import DALSTON, MANCHESTER, NEAR_HACKNEY, make_item, make_network, make_orders


def sell(db, clock, variant: int, point, quantity: int, *, at: datetime | None = None) -> int:
    (order_id,) = make_orders(db, clock, 1)
    with db.transaction() as session:
        order = session.get(Order, order_id)
        order.shipping_address = {"postcode": "E8 3PN", "latitude": point.latitude,
                                  "longitude": point.longitude}
        if at is not None:
            order.paid_at = order.created_at = at
        session.add(OrderLine(order_id=order_id, variant_id=variant, sku="X", product_name="X",
                              variant_name="50 ml", product_family="eau-de-parfum",
                              condition_grade=ConditionGrade.new, unit_price_amount=100,
                              quantity=quantity, line_total_amount=100 * quantity))
    return order_id


@pytest.fixture
def shop(db, clock):
    make_network(db, clock)
    with db.transaction() as session:
        session.add(Location(code="factory-bermondsey", name="Bermondsey micro-factory",
                             kind=LocationKind.micro_factory, latitude=51.498,
                             longitude=-0.064))
    # 10 at central, 1 at the hub.
    return make_item(db, clock, central=10, hub=1)


def test_the_plan_holds_the_hubs_past_demand_and_makes_what_central_cannot_spare(db, clock,
                                                                               shop):
    variant = shop
    clock.advance(days=-7)
    for _ in range(7):  # 14 units over the week near the hub, 7 in Manchester (out of reach)
        sell(db, clock, variant, NEAR_HACKNEY, 1)
        sell(db, clock, variant, DALSTON, 1)
        sell(db, clock, variant, MANCHESTER, 1)
        clock.advance(days=1)
    with db.transaction() as session:
        plan = stocking.plan_positioning(session, clock=clock, days=7, cover_days=2,
                                         safety=1.3)

    (target,) = plan.targets
    assert (plan.orders_read, plan.orders_in_reach) == (21, 14)
    assert (target.hub, target.daily_units, target.target, target.on_hand) == (
        "hub-hackney", 2.0, 6, 1)  # ceil(2 a day * 2 days * 1.3) = 6, 1 there already
    assert [(p.kind, p.source, p.quantity, p.lead_hours) for p in plan.proposals] == [
        ("transfer", "central", 5, 12.0)]

    with db.transaction() as session:
        drop = stocking.plan_positioning(
            session, clock=clock, days=7, cover_days=1,
            drop=stocking.P.DropDemand(estimate={variant: 90.0}, cap={variant: 60}))
    # The drop: 60 capped units, two thirds of the orders in reach -> 40 more a day; central
    # spares its 10, the micro-factory makes the rest in 48 h.
    assert drop.targets[0].target == 55  # ceil((2 + 40) * 1 * 1.3)
    kinds = [(p.kind, p.source, p.quantity, p.lead_hours) for p in drop.proposals]
    assert kinds == [("transfer", "central", 10, 12.0),
                     ("production", "factory-bermondsey", 44, 48.0)]

    with db.transaction() as session:
        started = stocking.accept_positioning(session, clock=clock, plan=drop, only={2})
    assert [(m.kind, m.quantity) for m in started] == [(MovementKind.production, 44)]


def test_positioning_and_costs_through_the_api(client, db, clock, shop):
    variant = shop
    sell(db, clock, variant, NEAR_HACKNEY, 3)
    headers = api_token(db, clock, "fulfilment:manage")

    planned = client.post("/api/v1/admin/fulfilment/positioning", headers=headers,
                          json={"days": 7, "cover_days": 7})
    assert planned.status_code == 200, planned.text
    assert [(p["kind"], p["quantity"]) for p in planned.json()["proposals"]] == [
        ("transfer", 3)]  # ceil(3/7 a day * 7 days * 1.3) = 4, less the 1 there
    accepted = client.post("/api/v1/admin/fulfilment/positioning/accept", headers=headers,
                           json={"days": 7, "cover_days": 7})
    assert accepted.status_code == 201, accepted.text
    assert [m["quantity"] for m in accepted.json()] == [3]

    before = snapshot(db)
    assert_problem(client.post("/api/v1/admin/fulfilment/positioning/accept", headers=headers,
                               json={"days": 0}), 422)
    assert_problem(client.post("/api/v1/admin/fulfilment/positioning/accept", headers=headers,
                               json={"days": 7, "only": [9]}))
    assert changed_tables(before, snapshot(db)) == []

    costs = client.get("/api/v1/admin/fulfilment/costs", headers=headers)
    assert costs.status_code == 200 and costs.json() == []  # nothing decided yet
    assert_problem(client.get("/api/v1/admin/fulfilment/costs", headers=headers,
                              params={"weeks": 0}), 422)


def test_the_cost_report_takes_hub_orders_from_their_planned_routes(db, clock, shop):
    from dropline.adapters.routing import PyVRPSolver
    from dropline.fulfilment import service
    from dropline.fulfilment.planning import plan_window

    from .builders import make_windows

    variant = shop
    window_id = make_windows(db)[-1]
    orders = make_orders(db, clock, 3)
    with db.transaction() as session:
        for order_id, point in zip(orders, (NEAR_HACKNEY, DALSTON, MANCHESTER), strict=True):
            decision = service.decide_fulfilment(session, lines=[service.LineRequest(variant, 1)],
                                                 destination=point, customer_id=None,
                                                 at=clock.now())
            if point is not MANCHESTER:
                # Into the last window (the decision may have picked an earlier one).
                assert decision.path == "hub-window"
                decision = replace(decision, chosen=replace(decision.chosen,
                                                            window_id=window_id))
                service.book_window(session, clock=clock, window_id=window_id,
                                    order_id=order_id, destination=point, weight_grams=340)
            service.record_decision(session, clock=clock, decision=decision, order_id=order_id,
                                    customer_id=None)
    clock.advance(hours=12)
    with db.transaction() as session:
        planned = plan_window(session, clock=clock, window_id=window_id,
                              solver=PyVRPSolver(max_iterations=100), max_seconds=1)
        rows = stocking.cost_report(session, since=clock.now() - timedelta(days=7),
                                    until=clock.now())
    by_path = {r.path: r for r in rows}
    assert set(by_path) == {"central", "hub-window"}
    hub = by_path["hub-window"]
    assert (hub.orders, hub.routed_orders, hub.location_code) == (2, 2, "hub-hackney")
    assert hub.cost_amount == 2 * 80 + planned.row.cost_amount  # handling + the routes
    assert by_path["central"].cost_amount == 690 + 150  # Manchester: national, 340 g
    assert rows[0].week == "2026-W10"


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    return CliRunner()


def test_the_cli_plans_and_accepts_and_refuses_bad_options_in_one_line(cli, db, clock, shop):
    variant = shop
    # The CLI runs on the system clock: the sale is from yesterday, really.
    sell(db, clock, variant, NEAR_HACKNEY, 5, at=datetime.now(UTC) - timedelta(days=1))

    shown = cli.invoke(cli_app, ["fulfilment", "position", "plan", "--days", "7", "--json"])
    assert shown.exit_code == 0, shown.output
    proposals = json.loads(shown.output)["proposals"]
    assert [(p["number"], p["kind"], p["destination"]) for p in proposals] == [
        (1, "transfer", "hub-hackney")]

    bad = cli.invoke(cli_app, ["fulfilment", "position", "plan", "--expect", "twelve"])
    assert bad.exit_code == 2 and "VARIANT=UNITS" in bad.output

    accepted = cli.invoke(cli_app, ["fulfilment", "position", "accept", "--days", "7"])
    assert accepted.exit_code == 0 and "1 movement(s) started" in accepted.output
    with db.transaction() as session:
        assert session.scalar(select(StockMovement.quantity)) == proposals[0]["quantity"]
    costs = cli.invoke(cli_app, ["fulfilment", "costs", "--json"])
    assert costs.exit_code == 0 and json.loads(costs.output) == []
    for command in (["position", "plan"], ["position", "accept"], ["costs"]):
        helped = cli.invoke(cli_app, ["fulfilment", *command, "--help"])
        assert "Example: dropline fulfilment" in helped.output
