"""`dropline ltv fit`, driven through Typer's test runner on the sub-app itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dropline.telemetry.cli import app

runner = CliRunner()


def _fit(*args: str):
    return runner.invoke(app, ["fit", *args])


def test_fit_prints_parameters_and_the_holdout_check_as_json(ltv_data: Path):
    result = _fit("--transactions", str(ltv_data / "CDNOW_sample.txt"),
                  "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30", "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"bgnbd", "gamma_gamma", "pareto_nbd", "customers", "fit_seconds",
            "holdout_actual_transactions", "holdout_predicted_transactions",
            "holdout_actual_revenue", "holdout_predicted_revenue"} <= out.keys()
    assert out["customers"] == 2357
    assert {k: round(out["bgnbd"][k], 3) for k in ("r", "alpha", "a", "b")} == {
        "r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert round(out["bgnbd"]["loglik"], 1) == -9582.4
    assert {k: round(out["gamma_gamma"][k], 2) for k in ("p", "q", "gamma")} == {
        "p": 6.25, "q": 3.74, "gamma": 15.44}
    assert round(out["pareto_nbd"]["r"], 3) == 0.553
    assert out["holdout_actual_transactions"] == 1882
    assert round(out["holdout_predicted_transactions"]) == 1653
    assert out["holdout_actual_revenue"] == 70976.39


def test_fit_without_a_holdout_or_pareto_leaves_those_keys_out(tmp_path: Path):
    path = tmp_path / "orders.csv"
    rows = [f"c{i},2024-01-{1 + i % 5:02d},{10 + i}" for i in range(40)]
    rows += [f"c{i},2024-02-{1 + i % 20:02d},{5 + i}" for i in range(0, 40, 3)]
    path.write_text("customer_id,date,amount\n" + "\n".join(rows) + "\n")

    result = _fit("--transactions", str(path), "--calibration-end", "2024-03-31",
                  "--no-pareto", "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["customers"] == 40
    assert "pareto_nbd" not in out and "holdout_actual_transactions" not in out


def test_fit_prints_tables_by_default(ltv_data: Path):
    result = _fit("--transactions", str(ltv_data / "CDNOW_sample.txt"),
                  "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
                  "--no-pareto")

    assert result.exit_code == 0, result.output
    assert "BG/NBD" in result.stdout and "Gamma-Gamma" in result.stdout
    assert "1,882" in result.stdout


def test_help_shows_an_example():
    result = _fit("--help")

    assert result.exit_code == 0
    assert "Example: dropline ltv fit --transactions" in result.output


def test_a_bad_row_exits_2_with_the_line_on_stderr_and_no_traceback(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount\nc1,2024-01-01,3\nc1,2024-01-32,4\n")

    result = _fit("--transactions", str(path), "--calibration-end", "2024-03-31", "--json")

    assert result.exit_code == 2
    assert "line 3: bad date '2024-01-32'" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--transactions", "missing.csv", "--calibration-end", "2024-01-01"],
     "cannot read missing.csv"),
    (["--transactions", "x.csv", "--calibration-end", "2024-13-01"],
     "--calibration-end '2024-13-01' is not a date"),
    (["--transactions", "x.csv", "--calibration-end", "2024-02-01", "--holdout-end",
      "2024-01-01"], "--holdout-end must be after --calibration-end"),
])
def test_unusable_arguments_exit_2_with_a_readable_message(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = _fit(*args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_log_that_starts_after_the_calibration_end_exits_2(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount\nc1,2024-05-01,3\n")

    result = _fit("--transactions", str(path), "--calibration-end", "2024-03-31")

    assert result.exit_code == 2
    assert "no customer made a first purchase on or before 2024-03-31" in result.stderr
