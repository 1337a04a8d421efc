"""The planner on the demo brand's year of drops: the CLI, the API and the console page."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.clock import SystemClock
from dropline.demo import registered_steps, seed_demo
from dropline.drops.models import Drop
from dropline.planning.demo_history import GAPS, TRUTH
from dropline.web.app import create_app
from tests.builders import api_token, sign_in_console
from tests.planning.noise import add_small_drop
from tests.web.support import browser_session

runner = CliRunner()
PINNED = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
# The demo steps whose rows planning reads (the others, e.g. pop-ups and telemetry tags, only
# cost time here; the console's browser test runs the planning page on the whole demo).
PLANNING_INPUTS = {"catalog", "locations", "admin", "customers", "orders", "fulfilment",
                   "memberships", "planning"}


def test_on_demo_data_the_cli_api_and_page_give_dates_and_caps_with_reasons(db, settings,
                                                                             monkeypatch):
    """One demo seed (the slow part) for all three faces of the planner."""
    # The CLI plans from the system clock, so the demo is seeded there too; both are pinned to
    # one instant, or where "today" falls in the demo's history would move the fit by the hour.
    monkeypatch.setattr(SystemClock, "now", lambda self: PINNED)
    clock = SystemClock()
    steps = [step for step in registered_steps() if step.name in PLANNING_INPUTS]
    seed_demo(db, settings=settings, customers=200, seed=7, clock=clock, steps=steps)
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)

    _check_cli(clock)
    with TestClient(create_app(settings, clock=clock, db=db, run_worker=False),
                    raise_server_exceptions=False) as client:
        _check_api_and_page(browser_session(client), db, clock)
    _check_a_test_drop_nudges_the_cadence(db, clock)


def _plan_json() -> dict:
    result = runner.invoke(app, ["drops", "plan", "--json", "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _check_a_test_drop_nudges_the_cadence(db, clock):
    """Issue 27: one 6-unit drop run three days ago (a test: no announcement, no rise in
    attention) moves the recommended gap by at most five days, and the plan says it counted
    that drop for less."""
    before = _plan_json()
    with db.transaction() as session:
        add_small_drop(session, now=clock.now(), units=6, days_ago=3)

    after = _plan_json()

    gap_before = before["recommendations"][0]["gap_days"]
    gap_after = after["recommendations"][0]["gap_days"]
    assert abs(gap_after - gap_before) <= 5, (gap_before, gap_after)
    assert "test-drop (6 units)" in after["down_weighted_drops"]
    assert "test-drop (6 units)" not in before["down_weighted_drops"]
    assert not any("edge of its range" in note for note in after["attention"]["notes"])


def _check_cli(clock):
    """``dropline drops plan --json`` prints the recommended dates and caps with reasons."""
    result = runner.invoke(app, ["drops", "plan", "--json", "--bootstrap", "10"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    recs = data["recommendations"]
    assert len(recs) == 3
    today = clock.now().date()
    scheduled = date.fromisoformat(data["scheduled"][0]["starts_at"][:10])
    for rec in recs:
        day = date.fromisoformat(rec["date"])
        assert day > today and abs((day - scheduled).days) >= 7  # never on the scheduled drop
        assert rec["feasible"] and rec["cap"]["recommended_cap"] > 0
        assert "sells out with probability" in rec["cap"]["reason"]
        assert rec["cap"]["made_to_order_ships"] > rec["date"]
    assert "days after the previous drop" in data["cadence"]["why"]
    # The demo was built with a best gap of ~26 days; the plan learns it from the events.
    best = data["attention"]["best_gap_days"]
    assert best["low"] - 3 <= TRUTH.best_gap_days <= best["high"] + 3
    assert recs[0]["gap_days"] == round(best["estimate"]) or \
        abs(recs[0]["gap_days"] - best["estimate"]) <= 3
    # The scheduled drop's cap of 60 is far above what the signals support.
    assert data["scheduled"][0]["cap_now"] == 60
    assert data["scheduled"][0]["cap"]["recommended_cap"] < 60
    assert data["sustainability_totals"]["total_sold"] > 0
    assert data["demand_model"]["drops"] == len(GAPS) + 1

    human = runner.invoke(app, ["drops", "plan", "--bootstrap", "0"])
    assert human.exit_code == 0 and "Why:" in human.output
    attention = runner.invoke(app, ["planning", "attention", "--json", "--bootstrap", "0"])
    assert json.loads(attention.output.strip().splitlines()[-1])["all"]["drops"] == len(GAPS) + 1
    waste = runner.invoke(app, ["planning", "sustainability", "--json"])
    rows = json.loads(waste.output.strip().splitlines()[-1])
    assert rows[-1]["total_sold"] == data["sustainability_totals"]["total_sold"]


def test_every_planning_command_has_an_example():
    for command in (["drops", "plan"], ["planning", "attention"], ["planning", "cadence"],
                    ["planning", "caps"], ["planning", "sustainability"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Example: dropline" in result.output, command


def _check_api_and_page(client, db, clock):
    """The API needs the drops scope; the page shows the charts and the reasons."""

    denied = client.get("/api/v1/admin/planning/plan",
                        headers=api_token(db, clock, "orders:read"))
    plan = client.get("/api/v1/admin/planning/plan?bootstrap=0&target=0.9",
                      headers=api_token(db, clock, "drops:manage"))
    bad = client.get("/api/v1/admin/planning/plan?target=2",
                     headers=api_token(db, clock, "drops:manage"))
    waste = client.get("/api/v1/admin/planning/sustainability",
                       headers=api_token(db, clock, "drops:manage"))

    assert denied.status_code == 403
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json")
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["recommendations"][0]["cap"]["target_p_sell_out"] == 0.9
    options = body["trade_off"]["options"]
    assert options[0]["p_sell_out"] >= options[-1]["p_sell_out"]
    rows = waste.json()["drops"]
    assert len(rows) == len(GAPS) + 1  # the past drops; the scheduled one has not opened
    assert waste.json()["totals"]["left_over"] == rows[-1]["total_left_over"]
    # The post-drop report carries the same figures for its drop: a restocked one where the
    # seeded history has one (whether it does depends on the day the demo is seeded from, as
    # the CLI plans from the real "now"), else the best-selling past drop.
    restocked = max(rows, key=lambda r: (r["units_made_to_order"], r["units_sold"]))
    with db.transaction() as session:
        drop_id = session.scalar(select(Drop.id).where(Drop.slug == restocked["slug"]))
    report = client.get(f"/api/v1/admin/drops/{drop_id}/report",
                        headers=api_token(db, clock, "drops:manage")).json()
    assert report["sustainability"] == restocked
    assert report["sustainability"]["units_left_over"] == report["units_remaining"]

    sign_in_console(client, db, clock)
    page = client.get("/admin/planning")
    assert page.status_code == 200
    html = page.text
    assert "Attention, last" in html and "Chance of selling out by cap" in html
    assert "Why " in html and "Sustainability" in html
    assert 'href="/admin/planning"' in html  # in the console navigation


def test_with_no_past_drop_the_cli_api_and_page_say_what_to_do(client, db, clock, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)

    cli = runner.invoke(app, ["drops", "plan", "--json"])
    api = client.get("/api/v1/admin/planning/plan", headers=api_token(db, clock, "drops:manage"))
    sign_in_console(client, db, clock)
    page = client.get("/admin/planning")

    assert cli.exit_code == 2 and "no drop has ended yet" in cli.output
    assert api.status_code == 409 and "no drop has ended yet" in api.json()["detail"]
    assert page.status_code == 200 and "no drop has ended yet" in page.text
