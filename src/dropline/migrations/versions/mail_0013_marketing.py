"""mail outbox for every mail: drop mails (no order), the dedupe key widened, marketing
opt-outs and single-use unsubscribe links

Revision ID: mail_0013_marketing
Revises: 0012_mail_outbox
Create Date: 2026-12-07 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'mail_0013_marketing'
down_revision: str | None = '0012_mail_outbox'
branch_labels: str | Sequence[str] | None = ('notifications',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.alter_column('event_id', existing_type=sa.String(length=36),
                              type_=sa.String(length=120), existing_nullable=False)
        batch_op.alter_column('order_id', existing_type=sa.BigInteger(), nullable=True)
        batch_op.add_column(sa.Column('unsubscribe_used_at',
                                      dropline.db.UTCDateTime(timezone=True), nullable=True))
    op.create_table('marketing_opt_outs',
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('unsubscribed_at', dropline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('mail_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_marketing_opt_outs_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_marketing_opt_outs')),
    )


def downgrade() -> None:
    op.drop_table('marketing_opt_outs')
    # Mail about no order cannot stay in a table whose order_id is required again.
    op.execute("DELETE FROM mail_outbox WHERE order_id IS NULL OR length(event_id) > 36")
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_column('unsubscribe_used_at')
        batch_op.alter_column('order_id', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('event_id', existing_type=sa.String(length=120),
                              type_=sa.String(length=36), existing_nullable=False)
