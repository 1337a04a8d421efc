"""Delivery-window templates: a hub's windows kept N days ahead by the scheduler's job,
idempotently; set from the console form and the CLI. A refused template changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.cli import app as cli_app
from dropline.fulfilment.jobs import run_fulfilment_jobs
from dropline.fulfilment.models import DeliveryWindow, WindowTemplate
from dropline.fulfilment.window_templates import (
    TemplateSpec,
    roll_windows_forward,
    set_template,
)
from dropline.errors import InvalidInput
from tests.builders import sign_in_console
from tests.fulfilment.builders import make_network
from tests.web.support import changed_tables, snapshot

# The shared clock is 10:00 UTC (10:00 London) on Monday 2 March 2026; the hub opens 08-20.


def _windows(db) -> list[DeliveryWindow]:
    with db.transaction() as session:
        return list(session.scalars(select(DeliveryWindow).order_by(DeliveryWindow.starts_at)))


def test_the_job_keeps_n_days_of_windows_ahead_and_a_second_run_creates_nothing(db, clock):
    make_network(db, clock)
    with db.transaction() as session:
        set_template(session, clock=clock, location_code="hub-hackney",
                     spec=TemplateSpec(window_minutes=240, capacity=30, cutoff_minutes=60,
                                       days_ahead=3))
    report = run_fulfilment_jobs(db, clock=clock, solver=None)  # type: ignore[arg-type]
    windows = _windows(db)
    # 08-12 today is past its cutoff (07:00); 12-16 and 16-20 today, then 3 a day for 2 days
    assert report.windows_created == {"hub-hackney": 8} and len(windows) == 8
    assert windows[0].starts_at == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert windows[-1].starts_at == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
    assert {w.capacity for w in windows} == {30}

    again = run_fulfilment_jobs(db, clock=clock, solver=None)  # type: ignore[arg-type]
    assert again.windows_created == {"hub-hackney": 0} and len(_windows(db)) == 8

    clock.advance(days=1)  # a day later the horizon has moved by a day
    with db.transaction() as session:
        assert roll_windows_forward(session, clock=clock) == {"hub-hackney": 3}
    assert _windows(db)[-1].starts_at == datetime(2026, 3, 5, 16, 0, tzinfo=UTC)


def test_a_paused_template_rolls_nothing(db, clock):
    make_network(db, clock)
    with db.transaction() as session:
        set_template(session, clock=clock, location_code="hub-hackney",
                     spec=TemplateSpec(days_ahead=5, active=False))
        assert roll_windows_forward(session, clock=clock) == {}
    assert _windows(db) == []


@pytest.mark.parametrize(("code", "spec", "field"), [
    ("central", TemplateSpec(), "location"),
    ("hub-hackney", TemplateSpec(window_minutes=5), "window_minutes"),
    ("hub-hackney", TemplateSpec(days_ahead=90), "days_ahead"),
])
def test_a_bad_template_is_refused(db, clock, code, spec, field):
    make_network(db, clock)
    with pytest.raises(InvalidInput) as refused, db.transaction() as session:
        set_template(session, clock=clock, location_code=code, spec=spec)
    assert refused.value.extensions["field"] == field


def test_the_console_form_saves_a_template_and_creates_its_windows(client, db, clock):
    make_network(db, clock)
    sign_in_console(client, db, clock)
    page = client.get("/admin/fulfilment/templates")
    assert page.status_code == 200 and "Hackney micro-hub" in page.text
    saved = client.post("/admin/fulfilment/templates", follow_redirects=False, data={
        "hub": "hub-hackney", "window_minutes": "120", "capacity": "12",
        "cutoff_minutes": "120", "first_start": "", "days_ahead": "2", "active": "yes"})
    assert saved.status_code == 303 and "new%20window" in saved.headers["location"]
    with db.transaction() as session:
        template = session.scalars(select(WindowTemplate)).one()
        count = session.scalar(select(func.count()).select_from(DeliveryWindow))
    assert (template.capacity, template.days_ahead, template.active) == (12, 2, True)
    assert count == 3 + 6  # today from 14:00 (the 12:00 window stops booking at 10:00)

    before = snapshot(db)
    refused = client.post("/admin/fulfilment/templates", data={
        "hub": "hub-hackney", "window_minutes": "120", "capacity": "lots",
        "cutoff_minutes": "120", "first_start": "9am", "days_ahead": "2", "active": "yes"})
    assert refused.status_code == 422
    assert 'id="hub-hub-hackney-first_start-error"' in refused.text
    assert 'value="lots"' in refused.text and 'value="9am"' in refused.text
    assert changed_tables(before, snapshot(db)) == []


def test_the_cli_sets_lists_and_rolls_templates(db, clock, database_url, monkeypatch):
    make_network(db, clock)
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    cli = CliRunner()
    made = cli.invoke(cli_app, ["fulfilment", "templates", "set", "--hub", "hub-hackney",
                                "--minutes", "180", "--capacity", "20", "--days", "2"])
    assert made.exit_code == 0, made.output
    assert "template saved for hub-hackney" in made.output
    listed = cli.invoke(cli_app, ["fulfilment", "templates", "list"])
    assert "hub-hackney" in listed.output and "180 min" in listed.output
    rolled = cli.invoke(cli_app, ["fulfilment", "templates", "roll"])
    assert rolled.exit_code == 0 and "hub-hackney: 0 window(s) created" in rolled.output
    bad = cli.invoke(cli_app, ["fulfilment", "templates", "set", "--hub", "central"])
    assert bad.exit_code == 2 and "not a micro-hub" in bad.output


@pytest.mark.parametrize("command", ["set", "list", "roll", "remove"])
def test_every_templates_command_documents_an_example(command):
    shown = CliRunner().invoke(cli_app, ["fulfilment", "templates", command, "--help"])
    assert shown.exit_code == 0 and "Example: dropline fulfilment templates" in shown.output
