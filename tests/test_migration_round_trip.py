"""Every migration upgrades and downgrades, on both engines: a fresh database is taken to
every head, back to base (each revision's downgrade in turn) and up again, ending with the
schema the models describe. SQLite always; PostgreSQL when the suite has it, in a scratch
database of its own (the suite's database keeps its schema)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dropline.db import make_engine
from dropline.migrate import current_revisions, downgrade, pending_heads, upgrade
from dropline.models import metadata


def _scratch_postgres() -> Iterator[str]:
    base = make_url(os.environ["DROPLINE_TEST_DATABASE_URL"])
    name = f"{base.database}_round_trip"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'round-trip.db'}"
        return
    url = os.environ.get("DROPLINE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL round trip: set DROPLINE_TEST_DATABASE_URL (.ci/run does)")
    yield from _scratch_postgres()


def _schema_diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True}), metadata)
    finally:
        engine.dispose()


def test_every_migration_goes_up_down_and_up_again(fresh_url):
    upgrade(fresh_url)
    assert pending_heads(fresh_url) == ()

    downgrade(fresh_url, "base")
    assert current_revisions(fresh_url) == ()
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            left = [t for t in metadata.tables if conn.dialect.has_table(conn, t)]
    finally:
        engine.dispose()
    assert left == []  # every downgrade removed what its upgrade made

    upgrade(fresh_url)
    assert pending_heads(fresh_url) == ()
    assert _schema_diff(fresh_url) == []
