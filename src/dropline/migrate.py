"""Run the Alembic migrations shipped inside the package (so an installed Dropline migrates too).

Each domain keeps its migrations on its own branch off the foundation revision, so domains built
in parallel never fight over one linear history; "heads" applies every branch."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from dropline.db import make_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' must be doubled for ConfigParser interpolation (passwords in URLs).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "heads", connection: Connection | None = None) -> None:
    command.upgrade(alembic_config(url, connection), revision)


def downgrade(url: str, revision: str, connection: Connection | None = None) -> None:
    command.downgrade(alembic_config(url, connection), revision)


def current_revisions(url: str) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    finally:
        engine.dispose()


def head_revisions(url: str) -> tuple[str, ...]:
    """The heads a fully upgraded database records: the scripts' heads less those another
    head depends on (``depends_on``), which Alembic's version table leaves implied."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    heads = set(script.get_heads())
    implied = {rev.revision for head in heads
               for rev in script.revision_map.iterate_revisions(head, "base")
               if rev.revision != head}
    return tuple(sorted(heads - implied))


def pending_heads(url: str) -> tuple[str, ...]:
    """The branch heads the database has not reached. A head that another branch's revision
    ``depends_on`` is applied without being a current revision (Alembic records only the
    dependent one), so heads are compared with everything the current revisions imply."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    current = current_revisions(url)
    applied = {rev.revision for rev in script.revision_map.iterate_revisions(
        current, "base", select_for_downgrade=True)} if current else set()
    return tuple(sorted(set(script.get_heads()) - applied))
