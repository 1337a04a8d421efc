"""memberships: rotating mixes (a tier's pool, size and no-repeat window; members' preferences)

Revision ID: memb_0004_mixes
Revises: memb_0003_onboarding
Create Date: 2026-12-07 23:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'memb_0004_mixes'
down_revision: str | None = 'memb_0003_onboarding'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('membership_tiers') as batch:
        batch.add_column(sa.Column('mix_pool', sa.JSON(), server_default='[]', nullable=False))
        batch.add_column(sa.Column('mix_size', sa.Integer(), server_default='0',
                                   nullable=False))
        batch.add_column(sa.Column('mix_no_repeat', sa.Integer(), server_default='0',
                                   nullable=False))
    with op.batch_alter_table('memberships') as batch:
        batch.add_column(sa.Column('mix_preferences', sa.JSON(), server_default='{}',
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('memberships') as batch:
        batch.drop_column('mix_preferences')
    with op.batch_alter_table('membership_tiers') as batch:
        batch.drop_column('mix_no_repeat')
        batch.drop_column('mix_size')
        batch.drop_column('mix_pool')
