"""account security: idle session expiry, password resets, console TOTP and recovery codes

Revision ID: 0011_accounts
Revises: 0006_admin
Create Date: 2026-12-07 14:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dropline.db

revision: str = '0011_accounts'
down_revision: str | None = '0006_admin'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dropline.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('password_resets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('used_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_password_resets_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash'))
    )
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_resets_customer_id'), ['customer_id'], unique=False)

    op.create_table('admin_recovery_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('admin_user_id', sa.BigInteger(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['admin_user_id'], ['admin_users.id'], name=op.f('fk_admin_recovery_codes_admin_user_id_admin_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_recovery_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_admin_recovery_codes_code_hash'))
    )
    with op.batch_alter_table('admin_recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_recovery_codes_admin_user_id'), ['admin_user_id'], unique=False)

    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_confirmed_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))

    # Existing sessions were last seen when they started: the idle clock starts there.
    for table in ('customer_sessions', 'admin_sessions'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('last_seen_at', UTC, nullable=True))
        op.execute(sa.text(f'UPDATE {table} SET last_seen_at = created_at'))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('last_seen_at', existing_type=UTC, nullable=False)
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('awaiting_code', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.alter_column('awaiting_code', existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.drop_column('awaiting_code')
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('customer_sessions', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_confirmed_at')
        batch_op.drop_column('totp_secret')
    with op.batch_alter_table('admin_recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_recovery_codes_admin_user_id'))
    op.drop_table('admin_recovery_codes')
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_resets_customer_id'))
    op.drop_table('password_resets')
