"""console: staff roles and deactivation, staff notes, customer erasure

Revision ID: con_0017_staff_roles
Revises: sec_0016_sign_up_requests
Create Date: 2026-12-07 22:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = 'con_0017_staff_roles'
down_revision: str | None = 'sec_0016_sign_up_requests'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dropline.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Staff from before roles held every permission: they become owners.
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), server_default='owner',
                                      nullable=False))
        batch_op.add_column(sa.Column('deactivated_at', UTC, nullable=True))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', UTC, nullable=True))
    op.create_table('staff_notes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject_type', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.BigInteger(), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_notes'))
    )
    with op.batch_alter_table('staff_notes', schema=None) as batch_op:
        batch_op.create_index('ix_staff_notes_subject', ['subject_type', 'subject_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staff_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_notes_subject')
    op.drop_table('staff_notes')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.drop_column('deactivated_at')
        batch_op.drop_column('role')
