"""Load purchase event logs for the LTV model from CSV or the CDNOW text format.

Both loaders parse whole columns with numpy in one go and only walk the rows one by one
when that fails, to name the first bad line, so a log of millions of rows loads in seconds.

* CSV: a header with at least ``customer_id,date,amount`` (any order, extra columns
  ignored); dates ISO ``YYYY-MM-DD`` or an ISO datetime whose time of day is dropped.
* CDNOW: whitespace-separated, ``customer_id YYYYMMDD number_of_cds dollar_value``
  (``CDNOW_master.txt``, with its header line), or the 5-column 1/10 sample
  (``master_id sample_id YYYYMMDD number_of_cds dollar_value``, no header), whose
  customer id is taken from the sample id so it matches the published summaries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

TransactionFormat = Literal["csv", "cdnow"]
CSV_COLUMNS = ("customer_id", "date", "amount")


class TransactionImportError(ValueError):
    """A transaction file that cannot be read; `line` is 1-based (None: the whole file)."""

    def __init__(self, reason: str, *, line: int | None = None, path: str | None = None):
        self.reason = reason
        self.line = line
        self.path = path
        where = f"{path}: " if path else ""
        at = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{at}{reason}")


@dataclass(frozen=True, slots=True)
class Transactions:
    """A purchase event log, one entry per row of the source file."""

    customer_ids: NDArray[np.str_]
    dates: NDArray[np.datetime64]  # datetime64[D]
    amounts: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.amounts.size)


def load_transactions(path: str | Path, *, format: TransactionFormat | None = None) -> Transactions:
    """Load `path`; the format defaults to CDNOW for ``.txt``/``.dat`` files, else CSV."""
    path = Path(path)
    if format is None:
        format = "cdnow" if path.suffix.lower() in {".txt", ".dat"} else "csv"
    text = path.read_text(encoding="utf-8-sig")
    if format == "csv":
        return parse_transactions_csv(text, source=str(path))
    if format == "cdnow":
        return parse_transactions_cdnow(text, source=str(path))
    raise ValueError(f"unknown transaction format {format!r}")


# --------------------------------------------------------------------------- CSV


def parse_transactions_csv(text: str, *, source: str | None = None) -> Transactions:
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise TransactionImportError("empty file: expected a header customer_id,date,amount",
                                     line=1, path=source)
    names = [h.strip().lower() for h in next(csv.reader(lines[:1]))]
    missing = [c for c in CSV_COLUMNS if c not in names]
    if missing:
        raise TransactionImportError(f"header lacks column(s) {', '.join(missing)}; "
                                     f"expected {','.join(CSV_COLUMNS)}", line=1, path=source)
    idx = [names.index(c) for c in CSV_COLUMNS]
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    body = lines[1:]
    if not body:
        raise TransactionImportError("no transactions after the header", line=1, path=source)
    columns = None if '"' in text else _split_plain_csv(body, len(names))
    if columns is None:
        columns, line_numbers = _split_quoted_csv(text, len(names), source)
    else:
        line_numbers = range(2, len(body) + 2)
    ids, dates, amounts = (np.strings.strip(np.array(columns[i], dtype=np.str_)) for i in idx)
    return _build(ids, _iso_days(dates, line_numbers, source),
                  _amounts(amounts, line_numbers, source), line_numbers, source)


def _split_plain_csv(body: list[str], width: int) -> list[list[str]] | None:
    """Columns of an unquoted CSV body whose every line has `width` fields, else None.

    Splitting one joined string gives a flat list of field strings and no per-row lists,
    which is what makes millions of rows cheap.
    """
    if any(line.count(",") != width - 1 for line in body):  # also catches blank lines
        return None
    fields = ",".join(body).split(",")
    return [fields[i::width] for i in range(width)]


def _split_quoted_csv(text: str, width: int, source: str | None) -> tuple[list[list[str]],
                                                                          list[int]]:
    rows = csv.reader(io.StringIO(text))
    next(rows)
    kept: list[list[str]] = []
    line_numbers: list[int] = []
    for row in rows:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != width:
            raise TransactionImportError(f"expected {width} columns, found {len(row)}",
                                         line=rows.line_num, path=source)
        kept.append(row)
        line_numbers.append(rows.line_num)
    return [list(col) for col in zip(*kept)], line_numbers


def _iso_days(values: NDArray[np.str_], lines: Sequence[int], source: str | None) -> NDArray:
    # numpy parses ISO dates in C; datetimes are cut to their date part first, since numpy
    # refuses to cast "2020-01-02T10:00" straight to a day.
    long = np.strings.str_len(values) > 10
    if long.any():
        sep = np.strings.slice(values, 10, 11)
        values = np.where(long & ((sep == "T") | (sep == " ")),
                          np.strings.slice(values, 0, 10), values)
    # numpy also reads "2020-01" or "2020" as a day: only full dates are accepted.
    bad = np.strings.str_len(values) != 10
    days = None
    if not bad.any():
        try:
            days = values.astype("datetime64[D]")
        except ValueError:
            pass
    if days is None or np.isnat(days).any():
        for value, line in zip(values.tolist(), lines):
            try:
                ok = len(value) == 10 and not np.isnat(np.datetime64(value, "D"))
            except ValueError:
                ok = False
            if not ok:
                raise TransactionImportError(f"bad date {value!r} (expected YYYY-MM-DD)",
                                             line=line, path=source)
    return days


def _amounts(values: NDArray[np.str_], lines: Sequence[int],
             source: str | None) -> NDArray[np.float64]:
    try:
        out = values.astype(np.float64)
    except ValueError:
        out = None
    bad = np.ones(len(values), dtype=bool) if out is None else ~np.isfinite(out) | (out < 0)
    if bad.any():
        for value, line in zip(values.tolist(), lines):
            try:
                number = float(value)
            except ValueError:
                raise TransactionImportError(f"bad amount {value!r} (expected a number)",
                                             line=line, path=source) from None
            if not np.isfinite(number) or number < 0:
                raise TransactionImportError(
                    f"bad amount {value!r} (expected a finite, non-negative number)",
                    line=line, path=source)
    return out


def _build(ids: NDArray[np.str_], days: NDArray, amounts: NDArray[np.float64],
           lines: Sequence[int], source: str | None) -> Transactions:
    empty = np.flatnonzero(ids == "")
    if empty.size:
        raise TransactionImportError("empty customer_id", line=lines[empty[0]], path=source)
    return Transactions(ids, days, amounts)


# --------------------------------------------------------------------------- CDNOW


def parse_transactions_cdnow(text: str, *, source: str | None = None) -> Transactions:
    lines = text.splitlines()
    start = 0
    if lines and lines[0].split() and not lines[0].split()[0].isdigit():
        start = 1  # the master file's header line
    body = [(n, ln) for n, ln in enumerate(lines[start:], start=start + 1) if ln.strip()]
    if not body:
        raise TransactionImportError("no transactions in the file", line=None, path=source)
    width = len(body[0][1].split())
    if width not in (4, 5):
        raise TransactionImportError(
            f"expected 4 columns (customer_id date number_of_cds dollar_value) or 5 "
            f"(the sample's master_id sample_id date cds value), found {width}",
            line=body[0][0], path=source)
    tokens = " ".join(ln for _, ln in body).split()
    line_numbers = [n for n, _ in body]
    if len(tokens) != width * len(body):
        for n, ln in body:
            if len(ln.split()) != width:
                raise TransactionImportError(f"expected {width} columns, found {len(ln.split())}",
                                             line=n, path=source)
    table = np.array(tokens, dtype=np.str_).reshape(len(body), width)
    id_col, date_col, amount_col = (1, 2, 4) if width == 5 else (0, 1, 3)
    days = _yyyymmdd_days(table[:, date_col], line_numbers, source)
    amounts = _amounts(table[:, amount_col], line_numbers, source)
    return _build(table[:, id_col], days, amounts, line_numbers, source)


def _yyyymmdd_days(values: NDArray[np.str_], lines: list[int], source: str | None) -> NDArray:
    ok = np.char.str_len(values) == 8
    ok &= np.char.isdigit(values)
    if ok.all():
        n = values.astype(np.int64)
        year, month, day = n // 10000, n // 100 % 100, n % 100
        days = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month - 1)
        days = days.astype("datetime64[D]") + (day - 1)
        # Out-of-range months or days roll over into another date: catch them by round trip.
        back = days.astype("datetime64[M]")
        ok = (month >= 1) & (month <= 12) & (day >= 1) & (
            back == (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month - 1))
        if ok.all():
            return days
    bad = int(np.flatnonzero(~ok)[0])
    raise TransactionImportError(f"bad date {str(values[bad])!r} (expected YYYYMMDD)",
                                 line=lines[bad], path=source)
