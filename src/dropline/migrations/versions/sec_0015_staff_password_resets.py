"""admin: single-use password-reset links for console staff

Revision ID: sec_0015_staff_password_resets
Revises: sec_0014_totp_sealed
Create Date: 2026-12-07 18:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'sec_0015_staff_password_resets'
down_revision: str | None = 'sec_0014_totp_sealed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dropline.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('admin_password_resets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('admin_user_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('used_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['admin_user_id'], ['admin_users.id'], name=op.f('fk_admin_password_resets_admin_user_id_admin_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_password_resets')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_admin_password_resets_token_hash'))
    )
    with op.batch_alter_table('admin_password_resets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_password_resets_admin_user_id'), ['admin_user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('admin_password_resets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_password_resets_admin_user_id'))
    op.drop_table('admin_password_resets')
