"""Many rows per statement on PostgreSQL, for the paths that write in batches (drop orders,
the local provider's ledger).

``insert_unnest`` writes ``INSERT ... SELECT FROM unnest(arrays)``: one statement whose text
does not depend on the number of rows (psycopg parses it once, PostgreSQL plans it once), with
one array parameter per column, sent in psycopg's binary format (no per-element escaping).
Cheaper per row than SQLAlchemy's multi-row VALUES or ``IN (...)`` lists, whose text grows
with the batch and is split and parsed again each time. Both helpers run on the session's own connection, so inside its
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from pydantic_core import to_json
from sqlalchemy import text
from sqlalchemy.orm import Session


def execute(session: Session, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Raw psycopg (``%s`` / ``%b`` placeholders, binary protocol) on the session's connection;
    returns the rows, if the statement has any."""
    driver = session.connection().connection.dbapi_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def insert_unnest(session: Session, table: str, columns: Sequence[tuple[str, str]],
                  rows: Sequence[Sequence[Any]], *, suffix: str = "") -> list[tuple[Any, ...]]:
    """``columns``: (name, SQL type); a ``json`` column takes any JSON-able value (encoded by
    pydantic-core: ~0.6 us for an order's payload, ~3 us with ``json.dumps``). ``suffix`` is
    appended (``ON CONFLICT ... RETURNING ...``); its rows are returned."""
    if not rows:
        return []
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"%b::{'text' if kind == 'json' else kind}[]" for _, kind in columns)
    select_list = ", ".join(f"u.{name}::json" if kind == "json" else f"u.{name}"
                            for name, kind in columns)
    params = tuple(
        [to_json(row[i]).decode() for row in rows] if kind == "json" else [row[i] for row in rows]
        for i, (_, kind) in enumerate(columns))
    return execute(session, f"INSERT INTO {table} ({names}) SELECT {select_list} "
                            f"FROM unnest({arrays}) AS u({names}) {suffix}", params)


def next_ids(session: Session, tables: Sequence[str], n: int) -> list[tuple[int, ...]]:
    """n ids from each table's sequence in one round trip, so rows can be written without
    RETURNING and children can refer to them in the same batch."""
    nextvals = ", ".join(f"nextval(pg_get_serial_sequence('{t}', 'id'))" for t in tables)
    return [tuple(row) for row in session.execute(text(
        f"SELECT {nextvals} FROM generate_series(1, :n)"), {"n": n})]


def insert_dicts(session: Session, table: str, columns: Sequence[tuple[str, str]],
                 rows: Sequence[dict[str, Any]]) -> None:
    """``insert_unnest`` of dict rows; enum members are stored by name, as the ORM does."""
    insert_unnest(session, table, columns, [
        tuple(v.name if isinstance(v := row[name], Enum) else v for name, _ in columns)
        for row in rows])
