"""mail outbox: order mails, once per event and template

Revision ID: 0012_mail_outbox
Revises: 0011_shipments
Create Date: 2026-12-07 15:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = '0012_mail_outbox'
down_revision: str | None = '0011_shipments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mail_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('template', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'failed', name='mailstatus',
                                native_enum=False, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=300), nullable=False),
    sa.Column('created_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', dropline.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_mail_outbox_customer_id_customers'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_outbox')),
    sa.UniqueConstraint('event_id', 'template', name=op.f('uq_mail_outbox_event_id_template')),
    )
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_outbox_customer_id'), ['customer_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_mail_outbox_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_outbox_next_attempt_at'), ['next_attempt_at'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('mail_outbox')
