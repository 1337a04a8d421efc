"""Too many connections is a moment's overload, not a server error: a request that finds the
pool empty (for its timeout) or the database refusing connections ("too many clients") is
answered 503 problem+json with Retry-After; pools are sized from the settings so that the
processes together stay within the server's max_connections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from dropline.bootstrap import build_services
from dropline.config import Settings
from dropline.db import Database, pool_options
from dropline.web.app import create_app


@pytest.fixture
def one_connection(database_url: str) -> Iterator[Database]:
    """A pool of exactly one connection, and a short wait for it."""
    small = Database(database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    yield small
    small.dispose()


def _get_drop(db: Database, settings: Settings, clock: Any, *, hold: bool) -> Any:
    app = create_app(settings, clock=clock, db=db, run_worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        if not hold:
            return client.get("/api/v1/drops/1")
        held = db.engine.connect()  # the pool's only connection, held by someone else
        try:
            return client.get("/api/v1/drops/1")
        finally:
            held.close()


def _is_busy(answer: Any) -> bool:
    return (answer.status_code == 503
            and answer.headers["content-type"].startswith("application/problem+json")
            and answer.headers["Retry-After"] == "2"
            and answer.json()["type"].endswith("/service-unavailable"))


def test_an_empty_pool_is_answered_503_with_retry_after(one_connection, settings, clock):
    busy = _get_drop(one_connection, settings, clock, hold=True)  # while the one is held
    free = _get_drop(one_connection, settings, clock, hold=False)  # and once it is back

    assert _is_busy(busy), busy.text
    assert free.status_code == 404  # served: no such drop


def test_a_database_refusing_connections_is_answered_503(one_connection, settings, clock):
    dbapi = one_connection.engine.dialect.dbapi

    @event.listens_for(one_connection.engine, "do_connect")
    def refuse(*_: Any) -> None:  # as PostgreSQL at its max_connections
        raise dbapi.OperationalError("FATAL: sorry, too many clients already")

    answer = _get_drop(one_connection, settings, clock, hold=False)

    assert _is_busy(answer), answer.text


def test_pools_take_their_share_of_the_servers_connections():
    assert pool_options(threads=32) == {"pool_size": 20, "max_overflow": 30,
                                        "pool_timeout": 30.0}
    # two servers with two workers each, on a server allowing 100: 23 each, 92 in all
    shared = pool_options(threads=32, workers=4, max_connections=100, timeout_seconds=3)
    assert shared["pool_size"] + shared["max_overflow"] == 23
    assert shared["pool_timeout"] == 3


def test_the_root_sizes_the_pool_from_the_settings(database_url):
    settings = Settings(database={"url": database_url, "max_connections": 45,
                                  "pool_timeout": 1.5},
                        web={"workers": 2, "threads": 8, "run_scheduler": False})
    services = build_services(settings)
    try:
        pool = services.db.engine.pool
        assert (pool.size(), pool._max_overflow, pool.timeout()) == (20, 0, 1.5)  # type: ignore[attr-defined]
    finally:
        services.db.dispose()
