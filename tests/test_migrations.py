"""The migrations build exactly the schema the models describe, on the engine under test."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dropline.migrate import current_revisions, head_revisions, pending_heads
from dropline.models import metadata


def test_migrated_schema_matches_the_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    assert diff == []


def test_database_is_at_every_head_revision(db):
    # A head another branch depends on is applied but not recorded as current.
    assert pending_heads(db.url) == ()
    assert set(current_revisions(db.url)) <= set(head_revisions(db.url))
