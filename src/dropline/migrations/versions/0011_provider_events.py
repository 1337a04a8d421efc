"""provider events (Stripe webhooks), stored once by id

Revision ID: 0011_provider_events
Revises: 0010_payments
Create Date: 2026-12-07 14:55:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = '0011_provider_events'
down_revision: str | None = '0010_payments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('provider_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payment_reference', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('received_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_events')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_provider_events_provider_event_id'))
    )
    with op.batch_alter_table('provider_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_events_payment_reference'),
                              ['payment_reference'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provider_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_events_payment_reference'))
    op.drop_table('provider_events')
