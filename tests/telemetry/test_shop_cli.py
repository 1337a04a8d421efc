"""`dropline telemetry ...` on the demo shop (seeded once for the module)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from dropline.cli import app
from dropline.clock import FrozenClock
from dropline.config import Settings
from dropline.db import Database
from dropline.demo import seed_demo
from dropline.migrate import upgrade

runner = CliRunner()
NOW = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    upgrade(url)
    db = Database(url)
    try:
        seed_demo(db, settings=Settings(database={"url": url}), customers=150, seed=7,
                  clock=FrozenClock(NOW))
    finally:
        db.dispose()
    return url


def _run(url: str, *args: str):
    return runner.invoke(app, ["telemetry", *args],
                         env={"DROPLINE_DATABASE_URL": url, "COLUMNS": "200"})


@pytest.mark.parametrize("command", ["cohorts", "ltv", "decisions", "cash-forecast", "import"])
def test_every_telemetry_command_has_help_with_an_example(command):
    result = runner.invoke(app, ["telemetry", command, "--help"], terminal_width=200)

    assert result.exit_code == 0
    assert "Example: dropline telemetry" in result.output


def test_cohorts_on_the_demo_say_which_cohorts_are_not_yet_observed(demo_url):
    table = _run(demo_url, "cohorts", "--as-of", "2026-03-01")
    as_json = json.loads(_run(demo_url, "cohorts", "--as-of", "2026-03-01", "--by",
                              "fulfilment", "--json").stdout)

    assert table.exit_code == 0, table.output
    assert "not yet 90 days old" in table.stdout and "90-day value" in table.stdout
    paths = {c["cut"]["fulfilment"] for c in as_json["cohorts"]}
    assert {"central", "pop-up"} <= paths
    for cohort in as_json["cohorts"]:
        assert cohort["fully_observed"] or cohort["note"].startswith("not yet 90 days old")
        assert (cohort["revenue_per_customer"]["90"] is None) != cohort["fully_observed"]


def test_every_demo_cut_has_data(demo_url):
    for cut in ("source", "family", "fulfilment", "drop_type", "subsidised"):
        out = json.loads(_run(demo_url, "cohorts", "--as-of", "2026-03-01", "--by", cut,
                              "--json").stdout)
        assert len({c["cut"][cut] for c in out["cohorts"]}) >= 2, cut


def test_decisions_on_the_demo_show_inputs_drop_tags_and_a_subsidy_answer(demo_url):
    result = _run(demo_url, "decisions", "--as-of", "2026-03-01", "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    bases = {c["basis"] for c in out["cac_ceilings"]}
    assert bases == {"drop tag", "product family"}
    for ceiling in out["cac_ceilings"]:
        if ceiling["ltv_90"] is not None:
            assert ceiling["ceiling"] == int(ceiling["ltv_90"] * 0.6 / 3)
    subsidy = out["delivery_subsidy"]
    assert subsidy["subsidised"] > 0 and subsidy["not_subsidised"] > 0
    assert subsidy["reason"].startswith(("yes", "no"))


def test_ltv_and_cash_forecast_print_tables(demo_url):
    ltv = _run(demo_url, "ltv", "--by", "source", "--as-of", "2026-03-01")
    cash = _run(demo_url, "cash-forecast", "--unit-cost", "1400", "--family", "candles",
                "--as-of", "2026-03-01")

    assert ltv.exit_code == 0, ltv.output
    assert "Expected value per customer over 52 weeks" in ltv.stdout
    assert cash.exit_code == 0, cash.output
    assert "peak cash need" in cash.stdout and "units arrive, balance paid" in cash.stdout


def test_a_bad_cut_exits_2_with_a_message(demo_url):
    result = _run(demo_url, "cohorts", "--by", "colour")

    assert result.exit_code == 2
    assert "unknown cut colour" in result.stderr
