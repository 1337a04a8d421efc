"""tax: the shop's VAT rates, product tax classes, and VAT on orders and their lines

Revision ID: tax_0001
Revises: 0001
Create Date: 2026-12-07 18:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'tax_0001'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = ('tax',)
depends_on: str | Sequence[str] | None = ('0012_mail_outbox', 'discounts_0001')

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
CLASSES = ('standard', 'reduced', 'zero', 'exempt')
OLD_TOTAL = 'total_amount = subtotal_amount - discount_amount + shipping_amount'


def upgrade() -> None:
    op.create_table('tax_rates',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('tax_class', sa.Enum(*CLASSES, name='taxclass', native_enum=False, length=16),
              nullable=False),
    sa.Column('rate_bp', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('created_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_rates')),
    sa.UniqueConstraint('country', 'tax_class', 'valid_from',
                        name=op.f('uq_tax_rates_country_tax_class_valid_from')),
    )
    op.create_table('product_tax_classes',
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('tax_class', sa.Enum(*CLASSES, name='taxclass', native_enum=False, length=16),
              nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                            name=op.f('fk_product_tax_classes_product_id_products'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('product_id', name=op.f('pk_product_tax_classes')),
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        for name in ('tax_amount', 'tax_added_amount', 'shipping_tax_amount'):
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=False,
                                          server_default='0'))
        batch_op.add_column(sa.Column('shipping_tax_rate_bp', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('tax_country', sa.String(length=2), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('reverse_charge', sa.Boolean(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('vat_number', sa.String(length=20), nullable=False,
                                      server_default=''))
        batch_op.drop_constraint(op.f('ck_orders_total_reconciles'), type_='check')
        batch_op.create_check_constraint('total_reconciles', OLD_TOTAL + ' + tax_added_amount')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_class', sa.String(length=16), nullable=False,
                                      server_default='standard'))
        batch_op.add_column(sa.Column('tax_rate_bp', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('tax_amount', sa.BigInteger(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        for name in ('tax_amount', 'tax_rate_bp', 'tax_class'):
            batch_op.drop_column(name)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_total_reconciles'), type_='check')
        batch_op.create_check_constraint('total_reconciles', OLD_TOTAL)
        for name in ('vat_number', 'reverse_charge', 'tax_country', 'shipping_tax_rate_bp',
                     'shipping_tax_amount', 'tax_added_amount', 'tax_amount'):
            batch_op.drop_column(name)
    op.drop_table('product_tax_classes')
    op.drop_table('tax_rates')
