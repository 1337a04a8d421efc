"""admin: console TOTP secrets sealed at rest (encrypted under a key derived from the app's
secret key, ``DROPLINE_SECRET_KEY``, which must be set as the app runs with when migrating)

Revision ID: sec_0014_totp_sealed
Revises: 0011_accounts
Create Date: 2026-12-07 18:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dropline.config import get_settings
from dropline.security import Unsealable, is_sealed, seal, unseal

revision: str = 'sec_0014_totp_sealed'
down_revision: str | None = '0011_accounts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The purpose the admin service seals TOTP keys for (admin.service.TOTP_PURPOSE), written
# out: a migration keeps what it did even if the code moves on.
PURPOSE = "admin totp secret"
users = sa.table('admin_users', sa.column('id', sa.BigInteger()),
                 sa.column('totp_secret', sa.String()))


def _rewrite(change) -> None:  # type: ignore[no-untyped-def]
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.id, users.c.totp_secret)
                        .where(users.c.totp_secret.is_not(None))).all()
    if not rows:
        return
    secret_key = get_settings().web.secret_key
    for user_id, value in rows:
        new = change(value, secret_key)
        if new != value:
            bind.execute(users.update().where(users.c.id == user_id).values(totp_secret=new))


def _sealed(value: str, secret_key: str) -> str:
    return value if is_sealed(value) else seal(value, secret_key=secret_key, purpose=PURPOSE)


def _opened(value: str, secret_key: str) -> str | None:
    if not is_sealed(value):
        return value
    try:
        return unseal(value, secret_key=secret_key, purpose=PURPOSE)
    except Unsealable:
        return None  # unreadable under this key: the enrolment is dropped, not kept wrong


def upgrade() -> None:
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', existing_type=sa.String(length=64),
                              type_=sa.String(length=255), existing_nullable=True)
    _rewrite(_sealed)


def downgrade() -> None:
    _rewrite(_opened)
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', existing_type=sa.String(length=255),
                              type_=sa.String(length=64), existing_nullable=True)
