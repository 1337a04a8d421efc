"""drop stories: a drop's Markdown story and a note per drop variant

Revision ID: 0011_drop_stories
Revises: 0003_drops
Create Date: 2026-12-07 15:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_drop_stories'
down_revision: str | None = '0003_drops'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('drops') as batch:
        batch.add_column(sa.Column('story', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('drop_variants') as batch:
        batch.add_column(sa.Column('note', sa.String(length=500), server_default='',
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('drop_variants') as batch:
        batch.drop_column('note')
    with op.batch_alter_table('drops') as batch:
        batch.drop_column('story')
