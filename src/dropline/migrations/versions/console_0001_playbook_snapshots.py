"""console: weekly playbook snapshots (what changed since last week)

Revision ID: console_0001
Revises: 0001
Create Date: 2026-12-07 23:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'console_0001'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('playbook_snapshots',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('week', sa.String(length=8), nullable=False),
    sa.Column('markdown', sa.Text(), nullable=False),
    sa.Column('taken_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_playbook_snapshots')),
    sa.UniqueConstraint('name', 'week', name=op.f('uq_playbook_snapshots_name_week')),
    )


def downgrade() -> None:
    op.drop_table('playbook_snapshots')
