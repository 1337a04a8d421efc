"""``dropline drops`` calls the same services as the API."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dropline.cli import app
from tests.builders import make_location, make_product

runner = CliRunner()


def test_create_show_list_and_report_a_drop(db, clock, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    make_location(db)
    _, variant = make_product(db, clock, stock=0)

    created = runner.invoke(app, ["drops", "create", "night-fig", "--name", "Night Fig",
                                  "--variant", str(variant), "--cap", "40", "--limit", "2",
                                  "--starts-at", "+1h", "--ends-at", "+1d",
                                  "--early-access", "30"])
    listed = runner.invoke(app, ["drops", "list"])
    report = runner.invoke(app, ["drops", "report", "night-fig", "--json"])
    missing = runner.invoke(app, ["drops", "show", "nope"])

    assert created.exit_code == 0, created.output
    assert "scheduled" in created.output
    assert "night-fig" in listed.output
    data = json.loads(report.output.strip().splitlines()[-1])
    assert (data["cap"], data["units_sold"], data["units_remaining"]) == (40, 0, 40)
    assert missing.exit_code == 2 and "not found" in missing.output


def test_every_drops_command_has_an_example():
    for command in ("create", "list", "show", "schedule", "restock", "reclaim", "report"):
        result = runner.invoke(app, ["drops", command, "--help"])
        assert result.exit_code == 0 and "Example: dropline drops" in result.output, command
