"""The migrations build exactly the schema the models describe, on the engine under test."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dropline.migrate import current_revision
from dropline.models import metadata


def test_migrated_schema_matches_the_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    assert diff == []


def test_database_is_at_the_head_revision(db):
    from alembic.script import ScriptDirectory

    from dropline.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
    assert current_revision(db.url) == head
