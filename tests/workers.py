"""Each pytest-xdist worker gets its own PostgreSQL database and Redis database.

``./run tests`` runs the suite in two processes (``-n 2``); the tests empty the tables and
flush the Redis database they use, so two workers must never share one. Imported first by
``tests/conftest.py``, before anything reads the environment: worker ``gwN`` uses the database
named in ``DROPLINE_TEST_DATABASE_URL`` with ``_gwN`` appended (created here when missing) and
the Redis database numbered N above the one in ``DROPLINE_TEST_REDIS_URL``. Without xdist
nothing changes.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ... or None


def _own_database(url: str, worker: str) -> str:
    base = make_url(url)
    if base.get_backend_name() != "postgresql":
        return url
    name = f"{base.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": name}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _own_redis(url: str, index: int) -> str:
    base, _, number = url.rpartition("/")
    return f"{base}/{int(number or 0) + index}"


if WORKER:
    # xdist's workers inherit COLUMNS=80, which fixes the width of every Rich console built at
    # import; tests that give CliRunner a width (env COLUMNS) need it unset, as in one process.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)
    index = int(WORKER.removeprefix("gw"))
    if os.environ.get("DROPLINE_TEST_DATABASE_URL"):
        os.environ["DROPLINE_TEST_DATABASE_URL"] = _own_database(
            os.environ["DROPLINE_TEST_DATABASE_URL"], WORKER)
    os.environ["DROPLINE_TEST_REDIS_URL"] = _own_redis(
        os.environ.get("DROPLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/3"), index)
