"""payment discrepancies found by reconciliation against the provider's list API

Revision ID: stripe2_discrepancies
Revises: 0011_provider_events
Create Date: 2026-12-07 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'stripe2_discrepancies'
down_revision: str | None = '0011_provider_events'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payment_discrepancies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.Column('found_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', dropline.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_discrepancies')),
    sa.UniqueConstraint('kind', 'reference',
                        name=op.f('uq_payment_discrepancies_kind_reference'))
    )


def downgrade() -> None:
    op.drop_table('payment_discrepancies')
