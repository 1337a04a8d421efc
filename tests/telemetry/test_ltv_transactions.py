"""Loading purchase logs: CSV and the CDNOW text format, and naming the line of a bad row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dropline.telemetry.transactions import (
    TransactionImportError,
    load_transactions,
    parse_transactions_cdnow,
    parse_transactions_csv,
)


def test_csv_rows_load_with_dates_and_datetimes_in_any_column_order():
    text = ("amount,customer_id,date,channel\n"
            "12.50,c1,2024-03-01,web\n"
            "\n"
            "7,c2,2024-03-02T18:45:00,shop\n"
            "0.00,c1,2024-03-05 09:00:00,web\n")

    log = parse_transactions_csv(text)

    assert log.customer_ids.tolist() == ["c1", "c2", "c1"]
    assert log.dates.tolist() == np.array(
        ["2024-03-01", "2024-03-02", "2024-03-05"], dtype="datetime64[D]").tolist()
    assert log.amounts.tolist() == [12.5, 7.0, 0.0]
    assert len(log) == 3


@pytest.mark.parametrize(("row", "reason"), [
    ("c2,2024-02-30,5", "bad date '2024-02-30'"),
    ("c2,2024-02,5", "bad date '2024-02'"),
    ("c2,yesterday,5", "bad date 'yesterday'"),
    ("c2,2024-02-03,five", "bad amount 'five'"),
    ("c2,2024-02-03,-5", "bad amount '-5'"),
    ("c2,2024-02-03,nan", "bad amount 'nan'"),
    (",2024-02-03,5", "empty customer_id"),
    ("c2,2024-02-03", "expected 3 columns, found 2"),
])
def test_a_bad_csv_row_raises_an_import_error_naming_its_line(row, reason):
    text = f"customer_id,date,amount\nc1,2024-02-01,10\nc1,2024-02-02,11\n{row}\n"

    with pytest.raises(TransactionImportError) as caught:
        parse_transactions_csv(text, source="orders.csv")

    assert caught.value.line == 4
    assert caught.value.reason.startswith(reason)
    assert str(caught.value).startswith(f"orders.csv: line 4: {reason}")
    assert isinstance(caught.value, ValueError)


def test_a_csv_without_the_required_header_is_refused_at_line_one():
    with pytest.raises(TransactionImportError, match="line 1: header lacks column.s. amount"):
        parse_transactions_csv("customer_id,date,total\nc1,2024-01-01,3\n")


@pytest.mark.parametrize("text", ["", "customer_id,date,amount\n"])
def test_a_csv_without_transactions_is_refused(text):
    with pytest.raises(TransactionImportError, match="line 1"):
        parse_transactions_csv(text)


def test_the_cdnow_master_format_skips_its_header_and_keeps_every_row():
    text = (" customer_id  date number_of_cds  dollar_value\n"
            " 00001 19970101  1   11.77\n"
            " 00002 19970112  1   12.00\n"
            " 00002 19970112  5   77.00\n")

    log = parse_transactions_cdnow(text)

    assert log.customer_ids.tolist() == ["00001", "00002", "00002"]
    assert log.dates.astype(str).tolist() == ["1997-01-01", "1997-01-12", "1997-01-12"]
    assert log.amounts.tolist() == [11.77, 12.0, 77.0]


def test_the_cdnow_sample_file_is_keyed_by_the_sample_customer_id(ltv_data: Path):
    log = load_transactions(ltv_data / "CDNOW_sample.txt")  # .txt means CDNOW

    assert len(log) == 6919
    assert np.unique(log.customer_ids).size == 2357
    assert log.customer_ids[0] == "0001"
    assert round(float(log.amounts.sum()), 2) == 244091.94
    assert str(log.dates.min()) == "1997-01-01" and str(log.dates.max()) == "1998-06-30"


@pytest.mark.parametrize(("row", "reason"), [
    (" 00003 19970230  1   5.00", "bad date '19970230'"),
    (" 00003 1997013  1   5.00", "bad date '1997013'"),
    (" 00003 19970130  1   x", "bad amount 'x'"),
    (" 00003 19970130  1", "expected 4 columns, found 3"),
])
def test_a_bad_cdnow_row_raises_an_import_error_naming_its_line(row, reason):
    text = (" customer_id  date number_of_cds  dollar_value\n"
            " 00001 19970101  1   11.77\n"
            f"{row}\n")

    with pytest.raises(TransactionImportError) as caught:
        parse_transactions_cdnow(text)

    assert (caught.value.line, caught.value.reason[: len(reason)]) == (3, reason)


def test_format_follows_the_file_suffix_unless_given(tmp_path: Path):
    path = tmp_path / "log.data"
    path.write_text("customer_id,date,amount\nc1,2024-01-01,3\n")

    assert load_transactions(path).customer_ids.tolist() == ["c1"]
    with pytest.raises(TransactionImportError, match="expected 4 columns .* or 5"):
        load_transactions(path, format="cdnow")
