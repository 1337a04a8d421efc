"""discounts: codes with caps and scope, their redemptions, and an order's discount per line

Revision ID: discounts_0001
Revises: 0001
Create Date: 2026-12-07 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'discounts_0001'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = ('discounts',)
depends_on: str | Sequence[str] | None = '0012_mail_outbox'

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('discount_codes',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.Enum('percentage', 'fixed', 'free_delivery', name='discountkind',
                              native_enum=False, length=16), nullable=False),
    sa.Column('percent', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('stacking', sa.Enum('with_member_price', 'instead_of_member_price',
                                  name='stacking', native_enum=False, length=24),
              nullable=False),
    sa.Column('starts_at', dropline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', dropline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('max_uses_per_customer', sa.Integer(), nullable=True),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('disabled_at', dropline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)',
                       name=op.f('ck_discount_codes_uses_within_cap')),
    sa.CheckConstraint('percent >= 0 AND percent <= 100 AND amount >= 0',
                       name=op.f('ck_discount_codes_value_in_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discount_codes')),
    sa.UniqueConstraint('code', name=op.f('uq_discount_codes_code')),
    )
    op.create_table('discount_redemptions',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('discount_id', sa.BigInteger(), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('discount_amount', sa.BigInteger(), nullable=False),
    sa.Column('delivery_discount_amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['discount_id'], ['discount_codes.id'],
                            name=op.f('fk_discount_redemptions_discount_id_discount_codes')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_discount_redemptions_customer_id_customers')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                            name=op.f('fk_discount_redemptions_order_id_orders'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discount_redemptions')),
    sa.UniqueConstraint('order_id', name=op.f('uq_discount_redemptions_order_id')),
    )
    with op.batch_alter_table('discount_redemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_discount_redemptions_discount_id'),
                              ['discount_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_discount_redemptions_customer_id'),
                              ['customer_id'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_code', sa.String(length=32), nullable=True))
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_amount', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.create_check_constraint(
            'discount_within_line',
            'discount_amount >= 0 AND discount_amount <= line_total_amount')


def downgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_order_lines_discount_within_line'), type_='check')
        batch_op.drop_column('discount_amount')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('discount_code')
    with op.batch_alter_table('discount_redemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_discount_redemptions_customer_id'))
        batch_op.drop_index(batch_op.f('ix_discount_redemptions_discount_id'))
    op.drop_table('discount_redemptions')
    op.drop_table('discount_codes')
