"""tax: invoices and credit notes with gapless numbers (a counter row per series)

Revision ID: tax_0002
Revises: tax_0001
Create Date: 2026-12-07 18:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'tax_0002'
down_revision: str | None = 'tax_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _document(name: str, *extra: sa.Column | sa.Constraint) -> None:
    op.create_table(name,
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=24), nullable=False),
    *extra,
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('net_amount', sa.BigInteger(), nullable=False),
    sa.Column('tax_amount', sa.BigInteger(), nullable=False),
    sa.Column('gross_amount', sa.BigInteger(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('issued_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    sa.UniqueConstraint('number', name=op.f(f'uq_{name}_number')),
    sa.UniqueConstraint('reference', name=op.f(f'uq_{name}_reference')),
    )


def upgrade() -> None:
    op.create_table('document_counters',
    sa.Column('series', sa.String(length=16), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('series', name=op.f('pk_document_counters')),
    )
    _document('invoices',
              sa.Column('order_id', sa.BigInteger(), nullable=False),
              sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                                      name=op.f('fk_invoices_order_id_orders')),
              sa.UniqueConstraint('order_id', name=op.f('uq_invoices_order_id')))
    _document('credit_notes',
              sa.Column('invoice_id', sa.BigInteger(), nullable=False),
              sa.Column('refund_id', sa.BigInteger(), nullable=False),
              sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                                      name=op.f('fk_credit_notes_invoice_id_invoices')),
              sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'],
                                      name=op.f('fk_credit_notes_refund_id_refunds')),
              sa.UniqueConstraint('refund_id', name=op.f('uq_credit_notes_refund_id')))
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_notes_invoice_id'), ['invoice_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_notes_invoice_id'))
    op.drop_table('credit_notes')
    op.drop_table('invoices')
    op.drop_table('document_counters')
