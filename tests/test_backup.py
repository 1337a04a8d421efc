"""``dropline backup`` / ``restore`` on the embedded SQLite database: a restore drill (back up
while a writer writes, lose data, restore, find it again at the same schema), and the refusals
(PostgreSQL, a file that is no backup, an existing target)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.backup import backup_sqlite, restore_sqlite
from dropline.catalog.models import Product
from dropline.cli import app
from dropline.clock import SystemClock
from dropline.db import Database
from dropline.errors import InvalidInput
from dropline.events.models import DomainEvent
from dropline.events.service import record_event
from dropline.migrate import current_revisions, upgrade
from tests.builders import make_location, make_product

runner = CliRunner()


@pytest.fixture
def shop(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    upgrade(url)
    db = Database(url)
    yield url, db
    db.dispose()


def _count(db: Database, model) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_backup_taken_while_writing_restores_the_shop_as_it_was(shop, tmp_path):
    url, db = shop
    clock = SystemClock()
    make_location(db)
    for name in ("Oud Noir", "Vetiver Rain", "Fig Leaf"):
        make_product(db, clock, name=name)
    stop = threading.Event()

    def writer() -> None:  # the shop keeps taking writes during the backup
        while not stop.is_set():
            with db.transaction() as session:
                record_event(session, clock=clock, type="test.tick", subject_type="test",
                             subject_id=1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        report = backup_sqlite(url, tmp_path / "backup.db")
    finally:
        stop.set()
        thread.join()

    assert report.revisions == current_revisions(url) and report.pages > 0
    events_at_backup = _count(Database(f"sqlite:///{tmp_path / 'backup.db'}"), DomainEvent)
    with db.transaction() as session:  # the loss the backup is for
        for product in session.scalars(select(Product)):
            session.delete(product)
    assert _count(db, Product) == 0

    db.dispose()
    restored = restore_sqlite(url, tmp_path / "backup.db")

    assert restored.revisions == current_revisions(url)
    assert _count(db, Product) == 3
    assert _count(db, DomainEvent) == events_at_backup  # one consistent snapshot


def test_refusals_change_nothing_and_say_what_to_do(shop, tmp_path):
    url, db = shop
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("not a database at all " * 200)
    (tmp_path / "taken.db").write_bytes(b"")

    with pytest.raises(InvalidInput, match="pg_dump"):
        backup_sqlite("postgresql+psycopg://postgres@127.0.0.1/test", tmp_path / "x.db")
    with pytest.raises(InvalidInput, match="--force"):
        backup_sqlite(url, tmp_path / "taken.db")
    with pytest.raises(InvalidInput, match="not a SQLite database"):
        restore_sqlite(url, not_a_backup)
    assert current_revisions(url)  # the database is untouched
    assert (tmp_path / "taken.db").read_bytes() == b""


def test_the_commands_back_up_and_restore_with_one_line_errors(shop, tmp_path, monkeypatch):
    url, db = shop
    monkeypatch.setenv("DROPLINE_DATABASE_URL", url)
    make_location(db)
    make_product(db, SystemClock(), name="Neroli Tide")

    made = runner.invoke(app, ["backup", str(tmp_path / "b.db")])
    again = runner.invoke(app, ["backup", str(tmp_path / "b.db")])
    bad = runner.invoke(app, ["restore", str(tmp_path / "missing.db"), "--yes"])
    with db.transaction() as session:
        session.delete(session.scalars(select(Product)).one())
    db.dispose()
    back = runner.invoke(app, ["restore", str(tmp_path / "b.db"), "--yes"])

    assert made.exit_code == 0, made.output
    assert again.exit_code == 2 and "--force" in again.output
    assert bad.exit_code == 2 and "no backup at" in bad.output
    assert back.exit_code == 0, back.output
    assert _count(db, Product) == 1
