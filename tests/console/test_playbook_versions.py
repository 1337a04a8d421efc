"""Playbooks kept week by week: one snapshot per playbook and ISO week, and the console and
CLI say what changed since the week before (issue 27)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.console.models import PlaybookSnapshot
from dropline.console.versions import changes_since_last_week, iso_week, snapshot_playbooks
from dropline.demo import seed_demo
from dropline.drops.models import Drop
from tests.builders import sign_in_console


def test_a_week_later_the_runbook_page_and_cli_show_what_changed(db, clock, settings, client,
                                                                 monkeypatch):
    seed_demo(db, settings=settings, clock=clock, customers=40, seed=7)
    taken = snapshot_playbooks(db, clock=clock, currency="GBP")
    again = snapshot_playbooks(db, clock=clock, currency="GBP")  # same week: none more
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PlaybookSnapshot)) == taken == 3
        drop = session.scalars(select(Drop).where(Drop.starts_at > clock.now())).first()
        drop.name = "Ember Oud Reserve"  # the brand renames next week's drop
    assert again == 0
    clock.advance(days=7)

    sign_in_console(client, db, clock, email="ops@example.com")
    page = client.get("/admin/playbooks/drop-runbook")
    with db.transaction() as session:
        from dropline.console import playbooks
        from dropline.console.document import to_markdown
        now = to_markdown(playbooks.build("drop-runbook", session, clock=clock, currency="GBP"))
        changes = changes_since_last_week(session, name="drop-runbook", current=now,
                                          clock=clock)
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    cli = CliRunner().invoke(app, ["playbook", "changes", "drop-runbook", "--as-of",
                                   clock.now().strftime("%Y-%m-%dT%H:%M")])

    assert changes is not None and changes.since_week == iso_week(clock.now()
                                                                  - timedelta(days=7))
    assert any("Ember Oud Reserve" in line for line in changes.added)
    assert any("Ember Oud" in line and "Reserve" not in line for line in changes.removed)
    assert page.status_code == 200 and "What changed since the week of" in page.text
    assert "<ins>" in page.text and "Ember Oud Reserve" in page.text
    assert cli.exit_code == 0, cli.output
    assert "lines new" in cli.output and "+ " in cli.output


def test_before_any_earlier_week_the_page_says_so(db, clock, settings, client):
    seed_demo(db, settings=settings, clock=clock, customers=40, seed=7)
    snapshot_playbooks(db, clock=clock, currency="GBP")  # this week's: nothing earlier

    sign_in_console(client, db, clock, email="ops@example.com")
    page = client.get("/admin/playbooks/decision-tree")

    assert page.status_code == 200 and "No earlier week's version yet" in page.text
