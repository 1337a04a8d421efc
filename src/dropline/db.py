"""Engine, declarative base and the one-transaction-per-entry-point session scope.

Both engines are first-class: SQLite (the embedded default) and PostgreSQL (production, and the
race tests). Code that must hold a cap never relies on ``FOR UPDATE`` (SQLite ignores it); it
uses one conditional UPDATE and checks the row count.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite hands back naive values, so UTC is re-attached."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT on PostgreSQL.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


# Connections the server keeps for others (psql, migrations, the worker's jobs, a replica).
RESERVED_CONNECTIONS = 5
POOL_HEADROOM = 18  # above the web threads: the drop engine's batch and reader threads, jobs


def pool_options(*, threads: int, workers: int = 1, max_connections: int | None = None,
                 timeout_seconds: float = 30.0) -> dict[str, Any]:
    """A process's pool, sized from the configuration: a few more connections than web threads
    (a thread that holds a connection while it waits for another thread slot, a dependency's
    exit, can then never starve the threads that would free one), and no more than its share
    of the server's ``max_connections`` across ``workers`` processes, so the processes together
    never ask the server for more than it allows ("too many clients"). A request that finds
    the pool empty waits ``timeout_seconds`` and is then answered 503 (``web.problems``)."""
    size = threads + POOL_HEADROOM
    if max_connections is not None:
        size = min(size, max(1, (max_connections - RESERVED_CONNECTIONS) // max(1, workers)))
    core = min(size, 20)
    return {"pool_size": core, "max_overflow": size - core, "pool_timeout": timeout_seconds}


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
    if "poolclass" not in kwargs and not in_memory:
        for name, value in pool_options(threads=32).items():  # the default web threads
            kwargs.setdefault(name, value)
    else:
        for name in ("pool_size", "max_overflow", "pool_timeout"):
            kwargs.pop(name, None)  # a single-connection pool has no size
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so BEGIN IMMEDIATE below takes the write lock up front
        # instead of failing with "database is locked" on a read->write upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and its session factory; one per process (or per test)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work: commit once at the end, roll back on any exception."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


# pg_try_advisory_lock(classid, objid): the class id says "a Dropline job" (b"drop"), so the
# locks never meet another application's on the same server.
_JOB_LOCK_CLASS = 0x64726F70


@contextmanager
def exclusive_job(db: Database, name: str) -> Iterator[bool]:
    """Whether this process may run the periodic job ``name`` now: True for the one process
    that holds its lock, False (at once, no waiting) for every other one, on any node.

    On PostgreSQL the lock is a session advisory lock on a connection of its own, held while
    the job runs: the server drops it when the process ends, however it ends (a SIGKILL
    closes the socket and the server releases the lock at once), so a job is never left
    owned by a dead worker and no lease has to lapse first. The connection is committed
    straight after the lock is taken, so it holds no snapshot while the job runs.

    On SQLite the answer is always True: its deployments are one machine whose writers the
    engine serialises, and each job is safe to repeat by its own conditional claims."""
    if db.is_sqlite:
        yield True
        return
    objid = zlib.crc32(name.encode()) - 2**31  # the int4 PostgreSQL wants, stable everywhere
    params = {"classid": _JOB_LOCK_CLASS, "objid": objid}
    with db.engine.connect() as conn:
        held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:classid, :objid)"), params))
        conn.commit()
        try:
            yield held
        finally:
            if held:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:classid, :objid)"), params)
                    conn.commit()
                except Exception:
                    # A lock that could not be released must not go back to the pool with
                    # its connection: closing the connection releases it.
                    conn.invalidate()
                    raise
