"""The fulfilment API and CLI: happy paths, and 4xx problem+json that changes nothing on bad
input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dropline.adapters.routing import PyVRPSolver
from dropline.cli import app as cli_app
from dropline.fulfilment.api import get_solver
from tests.builders import api_token, sign_in_console
from tests.web.support import assert_problem, changed_tables, snapshot

from .builders import make_item, make_network, make_orders, make_windows

RULES = {"rules": [
    {"name": "members with delivery subsidy always get a window", "action": "prefer-hub",
     "conditions": [{"field": "member_delivery_subsidy", "op": "eq", "value": True}]},
    {"name": "orders under 2 km prefer the hub", "action": "prefer-hub",
     "max_premium_amount": 150,
     "conditions": [{"field": "distance_to_hub_km", "op": "lt", "value": 2}]},
]}


@pytest.fixture
def admin_headers(db, clock):
    return api_token(db, clock, "fulfilment:manage")


@pytest.fixture
def world(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    windows = make_windows(db)
    return variant, windows


def test_delivery_options_for_a_london_postcode_list_open_windows_and_the_decision(client,
                                                                                   world):
    variant, windows = world

    response = client.get("/api/v1/delivery-options",
                          params={"line": f"{variant}x1", "postcode": "e8 3pn"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["address"]["approximate"] is True and body["address"]["label"] == "E8 3PN"
    assert body["decision"]["path"] == "hub-window"
    assert body["decision"]["central_cost_amount"] == 610
    assert "Decided by: lowest cost" in body["decision"]["explanation"]
    assert [w["window_id"] for w in body["windows"]] == windows[3:]  # 14:00 on: before cutoff
    assert {w["remaining"] for w in body["windows"]} == {40}
    assert body["central"]["zone"] == "london" and body["central"]["price_amount"] == 395


def test_delivery_options_for_a_cart_at_a_latitude_and_longitude(client, world):
    variant, _ = world
    cart = client.post("/api/v1/carts").json()["id"]
    client.put(f"/api/v1/carts/{cart}/lines/{variant}", json={"quantity": 2})

    response = client.get("/api/v1/delivery-options",
                          params={"cart_id": cart, "latitude": 53.48, "longitude": -2.24})

    assert response.status_code == 200, response.text
    assert response.json()["decision"]["path"] == "central"
    assert response.json()["windows"] == []


@pytest.mark.parametrize("params, status, fragment", [
    ({"postcode": "E8"}, 422, "either cart_id or line"),
    ({"line": "1x1", "cart_id": "x", "postcode": "E8"}, 422, "either cart_id or line"),
    ({"line": "1x1"}, 422, "postcode"),
    ({"line": "1x1", "postcode": "M1 1AE"}, 422, "not in the built-in London"),
    ({"line": "1x1", "latitude": 51.5}, 422, "both latitude and longitude"),
    ({"line": "1x1", "latitude": 91, "longitude": 0}, 422, "latitude"),
    ({"line": "0x1", "postcode": "E8"}, 422, "line"),
    ({"line": "12x1000", "postcode": "E8"}, 422, "line"),
    ({"line": "999999x1", "postcode": "E8"}, 404, "variant 999999 not found"),
    ({"cart_id": "no-such-cart", "postcode": "E8"}, 404, "cart"),
    ({"line": "1x1", "postcode": "E8", "required_by": "2026-03-02T10:00:00"}, 422,
     "required_by"),
])
def test_bad_delivery_option_requests_are_4xx_problems(client, world, db, params, status,
                                                       fragment):
    before = snapshot(db)

    problem = assert_problem(client.get("/api/v1/delivery-options", params=params), status)

    assert fragment in json.dumps(problem)
    assert changed_tables(before, snapshot(db)) == []


def test_admin_endpoints_need_a_token_with_the_fulfilment_scope(client, db, clock):
    assert_problem(client.get("/api/v1/admin/fulfilment/rules"), 401)
    other = api_token(db, clock, "orders:read")
    assert_problem(client.get("/api/v1/admin/fulfilment/rules", headers=other), 403)


def test_rules_are_replaced_and_the_decision_tree_follows_them(client, db, clock,
                                                                admin_headers):
    saved = client.put("/api/v1/admin/fulfilment/rules", json=RULES, headers=admin_headers)

    assert saved.status_code == 200, saved.text
    assert [r["name"] for r in saved.json()] == [r["name"] for r in RULES["rules"]]
    markdown = client.get("/api/v1/admin/fulfilment/decision-tree", headers=admin_headers)
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "**orders under 2 km prefer the hub" in markdown.text
    svg = client.get("/api/v1/admin/fulfilment/decision-tree", params={"format": "svg"},
                     headers=admin_headers)
    assert svg.headers["content-type"] == "image/svg+xml" and "<svg" in svg.text
    assert client.get("/admin/fulfilment/decision-tree",
                      follow_redirects=False).status_code == 303  # console sign-in required
    sign_in_console(client, db, clock)
    page = client.get("/admin/fulfilment/decision-tree")
    assert page.status_code == 200 and "<svg" in page.text


@pytest.mark.parametrize("body", [
    {"rules": [{"name": "x", "action": "teleport"}]},
    {"rules": [{"name": "x", "action": "prefer-hub",
                "conditions": [{"field": "weight_grams", "op": "lt", "value": "heavy"}]}]},
    {"rules": [{"name": "x", "action": "prefer-hub"}, {"name": "x", "action": "prefer-hub"}]},
    {"rules": [{"name": "x", "action": "prefer-hub", "max_premium_amount": -5}]},
    {"rules": "not a list"},
])
def test_bad_rules_are_refused_and_the_old_ones_stay(client, admin_headers, db, body):
    client.put("/api/v1/admin/fulfilment/rules", json=RULES, headers=admin_headers)
    before = snapshot(db)

    assert_problem(client.put("/api/v1/admin/fulfilment/rules", json=body,
                              headers=admin_headers), 422)

    assert changed_tables(before, snapshot(db)) == []


def test_a_window_is_booked_planned_and_its_sheet_and_map_served(client, app_solver, db, clock,
                                                                 world, admin_headers):
    _, windows = world
    orders = make_orders(db, clock, 3)
    for order, postcode in zip(orders, ("E8 1AA", "E9 5BB", "N16 7CC"), strict=True):
        booked = client.post(f"/api/v1/admin/fulfilment/windows/{windows[-1]}/bookings",
                             json={"order_id": order, "postcode": postcode},
                             headers=admin_headers)
        assert booked.status_code == 201, booked.text

    planned = client.post(f"/api/v1/admin/fulfilment/windows/{windows[-1]}/plan",
                          json={"max_seconds": 2}, headers=admin_headers)

    assert planned.status_code == 200, planned.text
    sheet = planned.json()
    assert sheet["feasible"] and sum(len(r["stops"]) for r in sheet["routes"]) == 3
    assert client.get(f"/api/v1/admin/fulfilment/windows/{windows[-1]}/route-sheet",
                      headers=admin_headers).json() == sheet
    picture = client.get(f"/api/v1/admin/fulfilment/windows/{windows[-1]}/route-map.svg",
                         headers=admin_headers)
    assert picture.headers["content-type"] == "image/svg+xml"
    sign_in_console(client, db, clock)
    page = client.get(f"/admin/fulfilment/windows/{windows[-1]}")
    assert page.status_code == 200 and "Route 1" in page.text and "<svg" in page.text
    assert_problem(client.post(f"/api/v1/admin/fulfilment/windows/{windows[-1]}/plan",
                               json={}, headers=admin_headers), 409)


def test_a_full_window_is_409_and_an_unplanned_sheet_404(client, db, clock, world,
                                                         admin_headers):
    made = client.post("/api/v1/admin/fulfilment/windows", headers=admin_headers, json={
        "location": "hub-hackney", "day": "2026-03-03", "capacity": 1})
    assert made.status_code == 201, made.text
    window = made.json()[0]["id"]
    first, second = make_orders(db, clock, 2)
    client.post(f"/api/v1/admin/fulfilment/windows/{window}/bookings",
                json={"order_id": first, "latitude": 51.55, "longitude": -0.06},
                headers=admin_headers)

    full = assert_problem(client.post(
        f"/api/v1/admin/fulfilment/windows/{window}/bookings",
        json={"order_id": second, "latitude": 51.55, "longitude": -0.06},
        headers=admin_headers), 409)

    assert full["type"].endswith("/window-full")
    assert_problem(client.get(f"/api/v1/admin/fulfilment/windows/{window}/route-sheet",
                              headers=admin_headers), 404)


@pytest.mark.parametrize("path, body", [
    ("/api/v1/admin/fulfilment/vehicles", {"location": "central", "name": "van",
                                          "capacity_grams": 1000, "shift_start": "08:00",
                                          "shift_end": "18:00", "cost_per_km_amount": 20,
                                          "cost_per_hour_amount": 1600}),
    ("/api/v1/admin/fulfilment/vehicles", {"location": "hub-hackney", "name": "van",
                                          "capacity_grams": 0, "shift_start": "08:00",
                                          "shift_end": "18:00", "cost_per_km_amount": 20,
                                          "cost_per_hour_amount": 1600}),
    ("/api/v1/admin/fulfilment/windows", {"location": "nowhere", "day": "2026-03-03"}),
    ("/api/v1/admin/fulfilment/windows", {"location": "hub-hackney", "day": "2026-03-03",
                                         "window_minutes": 5}),
    ("/api/v1/admin/fulfilment/movements", {"kind": "production", "source": "central",
                                           "destination": "hub-hackney", "variant_id": 1,
                                           "quantity": 3}),
    ("/api/v1/admin/fulfilment/movements", {"kind": "transfer", "source": "central",
                                           "destination": "hub-hackney", "variant_id": 1,
                                           "quantity": 10**7}),
    ("/api/v1/admin/fulfilment/windows/999/bookings", {"order_id": 1, "postcode": "E8"}),
    ("/api/v1/admin/fulfilment/windows/999/plan", {"max_seconds": 1}),
    ("/api/v1/admin/fulfilment/windows/1/plan", {"max_seconds": 1000}),
])
def test_bad_admin_writes_are_4xx_problems_that_change_nothing(client, db, world,
                                                               admin_headers, path, body):
    client.get("/api/v1/admin/fulfilment/rules", headers=admin_headers)  # stamps last_used_at
    before = snapshot(db)

    assert_problem(client.post(path, json=body, headers=admin_headers))

    assert changed_tables(before, snapshot(db)) == []


def test_a_site_is_configured_through_the_api(client, world, admin_headers):
    response = client.put("/api/v1/admin/fulfilment/sites/hub-hackney", headers=admin_headers,
                          json={"handling_amount": 95, "opening_hours": {"sat": ["10:00",
                                                                                 "16:00"]}})

    assert response.status_code == 200, response.text
    assert response.json()["handling_amount"] == 95
    assert response.json()["opening_hours"] == {"sat": ["10:00", "16:00"]}
    assert_problem(client.put("/api/v1/admin/fulfilment/sites/hub-hackney",
                              headers=admin_headers,
                              json={"opening_hours": {"sat": ["16:00", "10:00"]}}), 422)


@pytest.fixture
def app_solver(client):
    client.app.dependency_overrides[get_solver] = lambda: PyVRPSolver(max_iterations=300)
    yield
    client.app.dependency_overrides.clear()


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    return CliRunner()


def test_cli_sets_rules_and_prints_the_tree(cli, db, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES["rules"]))

    assert cli.invoke(cli_app, ["fulfilment", "rules", "set", str(rules)]).exit_code == 0
    shown = cli.invoke(cli_app, ["fulfilment", "rules", "show"])
    tree = cli.invoke(cli_app, ["fulfilment", "tree", "--format", "svg", "-o",
                                str(tmp_path / "t.svg")])

    assert "2. orders under 2 km prefer the hub" in shown.output
    assert tree.exit_code == 0 and (tmp_path / "t.svg").read_text().startswith("<svg")


def test_cli_creates_windows_decides_plans_and_prints_the_sheet(cli, db, clock, world, tmp_path):
    variant, windows = world
    made = cli.invoke(cli_app, ["fulfilment", "windows", "create", "--hub", "hub-hackney",
                                "--day", "2030-01-07", "--capacity", "5"])
    assert made.exit_code == 0, made.output
    new_window = int(made.output.split()[1].rstrip(":"))
    (order,) = make_orders(db, clock, 1)
    from dropline.fulfilment import service

    with db.transaction() as session:
        service.book_window(session, clock=clock, window_id=new_window, order_id=order,
                            destination=service.R.GeoPoint(51.55, -0.06), weight_grams=400)

    decided = cli.invoke(cli_app, ["fulfilment", "options", "--line", f"{variant}x1",
                                   "--postcode", "E8"])
    planned = cli.invoke(cli_app, ["fulfilment", "plan", str(new_window), "--seconds", "1"])
    sheet = cli.invoke(cli_app, ["fulfilment", "sheet", str(new_window), "--json"])
    drawn = cli.invoke(cli_app, ["fulfilment", "map", str(new_window), "-o",
                                 str(tmp_path / "m.svg")])

    assert decided.exit_code == 0 and "Decided by" in decided.output
    assert planned.exit_code == 0 and "feasible" in planned.output, planned.output
    assert json.loads(sheet.output)["routes"][0]["stops"][0]["order_id"] == order
    assert drawn.exit_code == 0 and (tmp_path / "m.svg").exists()


def test_cli_errors_are_one_line_and_exit_code_2(cli, db):
    result = cli.invoke(cli_app, ["fulfilment", "sheet", "12345"])

    assert result.exit_code == 2 and "error: delivery window 12345 not found" in result.output
