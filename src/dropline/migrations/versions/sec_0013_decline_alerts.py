"""risk: card-testing alerts (declines per customer, IP or card reached their limit)

Revision ID: sec_0013_decline_alerts
Revises: 0007_risk
Create Date: 2026-12-07 17:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'sec_0013_decline_alerts'
down_revision: str | None = '0007_risk'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dropline.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('risk_decline_alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.Enum('customer', 'ip', 'card', name='declinealertkind', native_enum=False, length=16), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('declines', sa.Integer(), nullable=False),
    sa.Column('window_seconds', sa.Integer(), nullable=False),
    sa.Column('bursts', sa.Integer(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('last_seen_at', UTC, nullable=False),
    sa.Column('reviewed_at', UTC, nullable=True),
    sa.Column('reviewed_by', sa.String(length=120), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_risk_decline_alerts_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_decline_alerts'))
    )
    with op.batch_alter_table('risk_decline_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_decline_alerts_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_decline_alerts_subject'), ['subject'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_decline_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_decline_alerts_subject'))
        batch_op.drop_index(batch_op.f('ix_risk_decline_alerts_customer_id'))
    op.drop_table('risk_decline_alerts')
