"""payment method tokens in the local provider's ledger: its card's last4 and fingerprint

Revision ID: 0010_payments
Revises: 0001
Create Date: 2026-12-07 14:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_payments'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = ('payments',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('local_provider_charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_last4', sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column('card_fingerprint', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('local_provider_charges', schema=None) as batch_op:
        batch_op.drop_column('card_fingerprint')
        batch_op.drop_column('card_last4')
