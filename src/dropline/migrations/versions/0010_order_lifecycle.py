"""order lifecycle: the stage of every order, units cancelled per line

Revision ID: 0010_order_lifecycle
Revises: 0001
Create Date: 2026-12-07 14:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_order_lifecycle'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = ('order_lifecycle',)
depends_on: str | Sequence[str] | None = None

STAGES = ('paid', 'allocated', 'picking', 'packed', 'shipped', 'delivered', 'cancelled',
          'delivery_failed', 'returned')


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'stage', sa.Enum(*STAGES, name='orderstage', native_enum=False, length=24),
            server_default='paid', nullable=False))
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_quantity', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.create_check_constraint(
            op.f('ck_order_lines_cancelled_within_quantity'),
            'cancelled_quantity >= 0 AND cancelled_quantity <= quantity')


def downgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_order_lines_cancelled_within_quantity'), type_='check')
        batch_op.drop_column('cancelled_quantity')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('stage')
