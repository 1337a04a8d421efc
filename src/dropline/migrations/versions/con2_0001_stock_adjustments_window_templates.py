"""console: stock adjustments with a reason (the stock ledger), delivery-window templates

Revision ID: con2_0001
Revises: 0004_fulfilment
Create Date: 2026-12-07 22:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'con2_0001'
down_revision: str | None = '0004_fulfilment'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dropline.db.UTCDateTime(timezone=True)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('stock_adjustments',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('location_id', sa.BigInteger(), nullable=False),
    sa.Column('variant_id', sa.BigInteger(), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('on_hand_after', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'],
                            name=op.f('fk_stock_adjustments_location_id_locations'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'],
                            name=op.f('fk_stock_adjustments_variant_id_variants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_adjustments'))
    )
    with op.batch_alter_table('stock_adjustments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stock_adjustments_variant_id'), ['variant_id'],
                              unique=False)
    op.create_table('window_templates',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('location_id', sa.BigInteger(), nullable=False),
    sa.Column('window_minutes', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('cutoff_minutes', sa.Integer(), nullable=False),
    sa.Column('first_start', sa.Time(), nullable=True),
    sa.Column('days_ahead', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.CheckConstraint('window_minutes >= 15 AND window_minutes <= 720 AND capacity >= 1 '
                       'AND cutoff_minutes >= 0 AND days_ahead >= 1 AND days_ahead <= 60',
                       name=op.f('ck_window_templates_template_sane')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'],
                            name=op.f('fk_window_templates_location_id_locations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_window_templates')),
    sa.UniqueConstraint('location_id', name=op.f('uq_window_templates_location_id'))
    )


def downgrade() -> None:
    op.drop_table('window_templates')
    with op.batch_alter_table('stock_adjustments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stock_adjustments_variant_id'))
    op.drop_table('stock_adjustments')
