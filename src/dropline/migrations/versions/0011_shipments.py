"""shipments: an order's parcels, split by location, with carrier and tracking

Revision ID: 0011_shipments
Revises: 0010_order_lifecycle
Create Date: 2026-12-07 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = '0011_shipments'
down_revision: str | None = '0010_order_lifecycle'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('shipments',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('location_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'shipped', 'delivered', 'failed', 'returned',
                                name='shipmentstatus', native_enum=False, length=16),
              nullable=False),
    sa.Column('carrier', sa.String(length=32), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('tracking_number', sa.String(length=64), nullable=True),
    sa.Column('tracking_url', sa.String(length=300), nullable=False),
    sa.Column('created_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('shipped_at', dropline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', dropline.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'],
                            name=op.f('fk_shipments_location_id_locations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                            name=op.f('fk_shipments_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments')),
    sa.UniqueConstraint('carrier', 'tracking_number',
                        name=op.f('uq_shipments_carrier_tracking_number')),
    )
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shipments_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_shipments_created_at'), ['created_at'],
                              unique=False)
    op.create_table('shipment_lines',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('shipment_id', sa.BigInteger(), nullable=False),
    sa.Column('order_line_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'],
                            name=op.f('fk_shipment_lines_order_line_id_order_lines'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'],
                            name=op.f('fk_shipment_lines_shipment_id_shipments'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipment_lines')),
    sa.UniqueConstraint('order_line_id', name=op.f('uq_shipment_lines_order_line_id')),
    )
    with op.batch_alter_table('shipment_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shipment_lines_shipment_id'), ['shipment_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('shipment_lines')
    op.drop_table('shipments')
