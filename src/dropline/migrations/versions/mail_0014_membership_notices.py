"""membership notices onto the one mail outbox: every notice copied (pending ones stay
pending, sent ones stay sent), then their table dropped

Revision ID: mail_0014_membership_notices
Revises: mail_0013_marketing
Create Date: 2026-12-07 18:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'mail_0014_membership_notices'
down_revision: str | None = 'mail_0013_marketing'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ('0002_memberships',)

TEMPLATE = 'membership_notice'
UTC = dropline.db.UTCDateTime(timezone=True)

notices = sa.table(
    'membership_notices', sa.column('id', sa.BigInteger()),
    sa.column('customer_id', sa.BigInteger()), sa.column('membership_id', sa.BigInteger()),
    sa.column('kind', sa.String()), sa.column('dedupe_key', sa.String()),
    sa.column('subject', sa.String()), sa.column('body', sa.String()),
    sa.column('created_at', UTC), sa.column('claimed_until', UTC), sa.column('sent_at', UTC))
outbox = sa.table(
    'mail_outbox', sa.column('id', sa.BigInteger()), sa.column('event_id', sa.String()),
    sa.column('template', sa.String()), sa.column('customer_id', sa.BigInteger()),
    sa.column('order_id', sa.BigInteger()), sa.column('payload', sa.JSON()),
    sa.column('status', sa.String()), sa.column('attempts', sa.Integer()),
    sa.column('next_attempt_at', UTC), sa.column('last_error', sa.String()),
    sa.column('created_at', UTC), sa.column('sent_at', UTC))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(notices).order_by(notices.c.id)).mappings().all()
    if rows:
        # A notice still unsent is sent by the outbox job (its lease, if any, respected).
        op.bulk_insert(outbox, [{
            'event_id': r['dedupe_key'], 'template': TEMPLATE, 'customer_id': r['customer_id'],
            'order_id': None,
            'payload': {'kind': r['kind'], 'membership_id': r['membership_id'],
                        'subject': r['subject'], 'body': r['body']},
            'status': 'sent' if r['sent_at'] is not None else 'pending', 'attempts': 0,
            'next_attempt_at': r['claimed_until'] or r['created_at'], 'last_error': '',
            'created_at': r['created_at'], 'sent_at': r['sent_at']} for r in rows])
    with op.batch_alter_table('membership_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_notices_sent_at'))
        batch_op.drop_index(batch_op.f('ix_membership_notices_customer_id'))
    op.drop_table('membership_notices')


def downgrade() -> None:
    op.create_table('membership_notices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('membership_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('dedupe_key', sa.String(length=120), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.String(length=4000), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('claimed_until', UTC, nullable=True),
    sa.Column('sent_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_membership_notices_customer_id_customers')),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'],
                            name=op.f('fk_membership_notices_membership_id_memberships'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_notices')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_membership_notices_dedupe_key'))
    )
    with op.batch_alter_table('membership_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_notices_customer_id'), ['customer_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_membership_notices_sent_at'), ['sent_at'],
                              unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.select(outbox).where(outbox.c.template == TEMPLATE)
                        .order_by(outbox.c.id)).mappings().all()
    # A notice whose customer was deleted (customer_id SET NULL) has no place in the old table.
    kept = [r for r in rows if r['customer_id'] is not None]
    if kept:
        op.bulk_insert(notices, [{
            'customer_id': r['customer_id'], 'membership_id': r['payload'].get('membership_id'),
            'kind': r['payload'].get('kind', ''), 'dedupe_key': r['event_id'],
            'subject': r['payload'].get('subject', ''), 'body': r['payload'].get('body', ''),
            'created_at': r['created_at'], 'claimed_until': None,
            'sent_at': r['sent_at'] if r['status'] == 'sent' else None} for r in kept])
    op.execute(outbox.delete().where(outbox.c.template == TEMPLATE))
