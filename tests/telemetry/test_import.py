"""`dropline telemetry import`: every bad row named with its line, and nothing written unless
every row is good (or --skip-bad imports the good ones and reports the rest)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.customers.models import Customer
from dropline.events.models import DomainEvent
from dropline.orders.models import Order
from dropline.telemetry.imports import parse_history
from dropline.telemetry.service import load_purchase_log
from tests.web.support import changed_tables, snapshot

runner = CliRunner()
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
GOOD = """customer_email,customer_id,date,amount,currency,source,campaign,family
Ada@Example.com,,2025-01-05,42.50,GBP,instagram,spring,candles
,shopify-991,2025-02-01T10:30:00+01:00,10,GBP,,,
ada@example.com,,2025-03-05,7.05,gbp,tiktok,,refills
"""
BAD = """customer_email,date,amount,currency
ada@example.com,2025-01-05,42.50,GBP
not-an-email,2025-01-32,12.345,EUR
bob@example.com,2025-01-06,-3,GBP
carol@example.com,2025-01-07,abc,GBP
dan@example.com,2025-01-07,5
"""


def _invoke(database_url: str, *args: str):
    return runner.invoke(app, ["telemetry", "import", *args],
                         env={"DROPLINE_DATABASE_URL": database_url, "COLUMNS": "200"})


def test_parse_names_every_bad_row_with_its_line():
    parsed = parse_history(BAD, currency="GBP", now=NOW)

    assert [r.line for r in parsed.rows] == [2]
    assert [(e.line, e.message) for e in parsed.errors] == [
        (3, "bad customer_email 'not-an-email'; bad date '2025-01-32' (expected YYYY-MM-DD or "
            "an ISO datetime); bad amount '12.345' (expected a number with at most 2 decimals, "
            "e.g. 42.50); currency 'EUR' is not the shop's GBP"),
        (4, "amount '-3' must be positive (refunds are not imported)"),
        (5, "bad amount 'abc' (expected a number with at most 2 decimals, e.g. 42.50)"),
        (6, "expected 4 columns, found 3"),
    ]


def test_parse_refuses_a_header_without_a_customer_column():
    parsed = parse_history("date,amount,currency\n2025-01-01,1,GBP\n", currency="GBP", now=NOW)

    assert [(e.line, e.message) for e in parsed.errors] == [
        (1, "header lacks customer_email or customer_id")]


def test_parse_reads_ids_datetimes_and_amounts_in_minor_units():
    rows = parse_history(GOOD, currency="GBP", now=NOW).rows

    assert [(r.email, r.at.isoformat(), r.amount, r.source, r.family) for r in rows] == [
        ("ada@example.com", "2025-01-05T12:00:00+00:00", 4_250, "instagram", "candles"),
        ("shopify-991@imported.invalid", "2025-02-01T09:30:00+00:00", 1_000, "imported", ""),
        ("ada@example.com", "2025-03-05T12:00:00+00:00", 705, "tiktok", "refills"),
    ]


def test_a_file_with_a_bad_row_writes_nothing_and_lists_the_lines(db, database_url,
                                                                   tmp_path: Path):
    path = tmp_path / "history.csv"
    path.write_text(BAD)
    before = snapshot(db)

    result = _invoke(database_url, str(path))

    assert result.exit_code == 2
    assert "line 3: bad customer_email 'not-an-email'" in result.stderr
    assert "line 6: expected 4 columns, found 3" in result.stderr
    assert "4 bad row(s): nothing imported" in result.stderr
    assert "Traceback" not in result.output
    assert changed_tables(before, snapshot(db)) == []


def test_skip_bad_imports_the_good_rows_and_reports_the_rest(db, database_url, tmp_path: Path):
    path = tmp_path / "history.csv"
    path.write_text(BAD)

    result = _invoke(database_url, str(path), "--skip-bad")

    assert result.exit_code == 0, result.output
    assert "imported 1 orders of 1 customers (1 new)" in result.stdout
    assert "skipped line 4: amount '-3' must be positive" in result.stdout
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_import_writes_customers_and_imported_orders_that_telemetry_reads(db, database_url,
                                                                          tmp_path: Path):
    with db.transaction() as session:
        session.add(Customer(email="ada@example.com", password_hash="!", name="Ada",
                             acquisition_source="referral", created_at=NOW))
    path = tmp_path / "history.csv"
    path.write_text(GOOD)

    result = _invoke(database_url, str(path))

    assert result.exit_code == 0, result.output
    with db.transaction() as session:
        customers = {c.email: c for c in session.scalars(select(Customer))}
        orders = list(session.scalars(select(Order).order_by(Order.created_at)))
        events = list(session.scalars(select(DomainEvent).where(
            DomainEvent.type == "order.imported")))
        log = load_purchase_log(session, as_of=NOW)
    assert set(customers) == {"ada@example.com", "shopify-991@imported.invalid"}
    assert customers["ada@example.com"].acquisition_source == "referral"  # kept, not overwritten
    assert customers["shopify-991@imported.invalid"].password_hash == "!imported"
    assert [(o.total_amount, o.fulfilment_path, o.status.value) for o in orders] == [
        (4_250, "imported", "paid"), (1_000, "imported", "paid"), (705, "imported", "paid")]
    assert all(o.checkout_reference.startswith("import:") for o in orders)
    assert len(events) == 3 and all(e.payload["imported"] is True for e in events)
    assert sorted(log.family.tolist()) == ["", "candles", "refills"]
    assert sorted(log.source.tolist()) == ["imported", "referral", "referral"]


@pytest.mark.parametrize("text", ["", "customer_id,date,amount,currency\n"])
def test_an_empty_file_is_an_error_not_a_silent_success(text):
    parsed = parse_history(text, currency="GBP", now=NOW)

    assert parsed.rows == [] and parsed.errors[0].line == 1
