"""Test set-up: a real database built by the migrations, SQLite by default, PostgreSQL when
DROPLINE_TEST_DATABASE_URL is set (CI does). Each test that touches the database starts from
empty tables: the flows under test commit for real (as in production), so isolation is by
emptying tables afterwards rather than by an outer rolled-back transaction."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text

from dropline.bootstrap import install_listeners
from dropline.clock import FrozenClock
from dropline.config import Settings
from dropline.db import Database
from dropline.migrate import downgrade, upgrade
from dropline.models import metadata
from dropline.security import use_password_hasher
from dropline.web.app import create_app
from tests import workers  # noqa: F401  (first of ours: each xdist worker's own databases)
from tests.web.support import browser_session

TEST_DATABASE_URL = os.environ.get("DROPLINE_TEST_DATABASE_URL")

# argon2id at production cost takes ~0.5 s a hash on this machine and the suite signs up
# hundreds of customers; the cheapest parameters run the same code path.
use_password_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
# As the app, the worker and the CLI do: webhooks subscribe to events, the audit trail listens
# (tests that call services directly get the same deliveries and audit rows).
install_listeners()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DATABASE_URL:
        url = TEST_DATABASE_URL
        downgrade(url, "base")  # a previous run may have left tables behind
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    yield url


@pytest.fixture(scope="session")
def _engine_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def _empty_tables(db: Database) -> None:
    """Empties only the tables a test wrote to: one query finds them (TRUNCATE of ~50 tables
    costs about a second on PostgreSQL; most tests touch a handful)."""
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    probe = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in tables)
    with db.engine.begin() as conn:
        used = {row[0] for row in conn.execute(text(probe))}
        if not used:
            return
        if db.is_sqlite:
            for name in tables:
                if name in used:
                    conn.execute(text(f'DELETE FROM "{name}"'))
        else:
            # CASCADE also empties tables that reference these; RESTART IDENTITY resets ids.
            names = ", ".join(f'"{name}"' for name in tables if name in used)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db(_engine_db: Database) -> Iterator[Database]:
    yield _engine_db
    _empty_tables(_engine_db)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    """The folder the app's mail goes to in a test (``FolderSender``)."""
    return tmp_path / "outbox"


@pytest.fixture
def settings(database_url: str, outbox: Path, tmp_path: Path) -> Settings:
    return Settings(database={"url": database_url}, media={"dir": str(tmp_path / "media")},
                    web={"run_scheduler": False, "secret_key": "test-secret"},
                    mail={"outbox_dir": str(outbox)},
                    shop={"currency": "GBP",
                          "flat_shipping_amount": 395,
                          "free_shipping_threshold": 5000})


@pytest.fixture
def client(db: Database, clock: FrozenClock, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock, db=db, run_worker=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield browser_session(test_client)


def pytest_report_header(config: pytest.Config) -> str:
    return f"dropline database: {TEST_DATABASE_URL or 'sqlite (temporary file)'}"


DATA_DIR = Path(__file__).parent / "data"
