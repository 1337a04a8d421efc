"""customers: sign-ups wait for their address to be confirmed by a mailed link

Revision ID: sec_0016_sign_up_requests
Revises: sec_0015_staff_password_resets
Create Date: 2026-12-07 18:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'sec_0016_sign_up_requests'
down_revision: str | None = 'sec_0015_staff_password_resets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dropline.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('sign_up_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('acquisition_source', sa.String(length=64), nullable=False),
    sa.Column('acquisition_campaign', sa.String(length=120), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('used_at', UTC, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_up_requests')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_sign_up_requests_token_hash'))
    )
    with op.batch_alter_table('sign_up_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_up_requests_email'), ['email'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sign_up_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_up_requests_email'))
    op.drop_table('sign_up_requests')
