"""memberships: onboarding flow assignments (flow or holdout, drawn once per member)

Revision ID: memb_0003_onboarding
Revises: 0002_memberships
Create Date: 2026-12-07 22:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'memb_0003_onboarding'
down_revision: str | None = '0002_memberships'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    op.create_table('membership_onboarding_assignments',
    sa.Column('membership_id', sa.BigInteger(), nullable=False),
    sa.Column('flow', sa.String(length=40), nullable=False),
    sa.Column('held_out', sa.Boolean(), nullable=False),
    sa.Column('assigned_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'],
                            name=op.f('fk_membership_onboarding_assignments_membership_id_memberships'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('membership_id', name=op.f('pk_membership_onboarding_assignments')),
    )

def downgrade() -> None:
    op.drop_table('membership_onboarding_assignments')
