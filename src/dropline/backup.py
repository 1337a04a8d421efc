"""Backups of the embedded SQLite database, taken and restored while it is in use.

``dropline backup`` copies the live database with SQLite's online backup API
(``sqlite3.Connection.backup``) inside one read transaction: writers keep going (WAL), and the
copy is one consistent snapshot. The copy is checked (``integrity_check``) and
must hold the schema's migration record before it counts. ``dropline restore`` checks a backup
the same way and writes it over the database, again through the backup API, so the target's
WAL and locks stay consistent; stop the shop first (a restore replaces what it serves).

PostgreSQL has its own tools, better than anything here: ``pg_dump -Fc`` for a logical backup
and base backups with WAL archiving for point-in-time recovery (docs/operations.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from dropline.errors import InvalidInput

__all__ = ["BackupReport", "backup_sqlite", "restore_sqlite", "sqlite_path"]

Progress = Callable[[int, int], None]  # (pages copied, pages in all)


@dataclass(frozen=True)
class BackupReport:
    path: Path
    pages: int
    bytes: int
    revisions: tuple[str, ...]


def sqlite_path(url: str) -> Path:
    """The file behind a SQLite URL; refuses any other database with what to use instead."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise InvalidInput(
            f"dropline backup and restore are for the embedded SQLite database; this is "
            f"{parsed.get_backend_name()}: use pg_dump -Fc / pg_restore, or base backups with "
            "WAL archiving (docs/operations.md, Backups)")
    if parsed.database in (None, "", ":memory:"):
        raise InvalidInput("an in-memory database has nothing to back up")
    return Path(parsed.database)


def _check(connection: sqlite3.Connection, what: str) -> tuple[str, ...]:
    """The copy's migration revisions, after SQLite's own integrity check."""
    try:
        verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{what} is not a SQLite database ({exc})") from None
    if verdict != "ok":
        raise InvalidInput(f"{what} failed SQLite's integrity check: {verdict}")
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError:
        rows = []
    if not rows:
        raise InvalidInput(f"{what} holds no Dropline schema (no migration record)")
    return tuple(sorted(row[0] for row in rows))


def backup_sqlite(url: str, out: Path, *, overwrite: bool = False,
                  progress: Progress | None = None, pages_per_step: int = -1) -> BackupReport:
    """Copies the live database at ``url`` to ``out`` (a new file unless ``overwrite``).

    By default in one step: one read transaction, which in WAL mode never blocks the shop's
    writers. In smaller steps a write between two steps restarts the copy, so a busy shop
    could keep a stepped backup from ever finishing."""
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise InvalidInput(f"there is no database at {source_path}")
    if out.exists() and not overwrite:
        raise InvalidInput(f"{out} exists: choose another path or pass --force")
    if not out.parent.is_dir():
        raise InvalidInput(f"{out.parent} is not a folder")
    partial = out.with_name(out.name + ".partial")  # never a half-written file at ``out``
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(partial)
    try:
        source.backup(target, pages=pages_per_step,
                      progress=(lambda _status, left, total: progress(total - left, total))
                      if progress else None)
        revisions = _check(target, "the copy")
        pages = target.execute("PRAGMA page_count").fetchone()[0]
    except BaseException:
        target.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    target.close()
    partial.replace(out)
    return BackupReport(out, pages, out.stat().st_size, revisions)


def restore_sqlite(url: str, backup: Path, *, progress: Progress | None = None) -> BackupReport:
    """Replaces the database at ``url`` with the checked backup ``backup``."""
    target_path = sqlite_path(url)
    if not backup.is_file():
        raise InvalidInput(f"there is no backup at {backup}")
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        revisions = _check(source, str(backup))
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(target_path, timeout=30)
        try:
            source.backup(target, pages=1024,
                          progress=(lambda _status, left, total: progress(total - left, total))
                          if progress else None)
            pages = target.execute("PRAGMA page_count").fetchone()[0]
        finally:
            target.close()
    finally:
        source.close()
    return BackupReport(target_path, pages, backup.stat().st_size, revisions)
