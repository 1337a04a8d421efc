from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    # TOTP second factor (RFC 6238): the base32 secret, set at enrolment and stored sealed
    # (``dropline.security.seal``, under a key derived from the app's secret key: a copy of the
    # database alone does not give the codes); sign-in asks for a code once the enrolment is
    # confirmed. The last accepted time step refuses a replayed code.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_confirmed_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # The staff member's role (``admin.roles.Role``): the permission set of their console
    # pages, forms and API tokens. Staff from before roles existed held everything: owner.
    role: Mapped[str] = mapped_column(String(16), default="owner", server_default="owner")
    # A deactivated member signs in no more; their sessions and tokens stop working. The row
    # stays: the audit trail names them.
    deactivated_at: Mapped[datetime | None]


class RecoveryCode(Base):
    """A one-time code that stands in for a TOTP code (a lost phone). Only its SHA-256."""

    __tablename__ = "admin_recovery_codes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    admin_user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]


class ApiToken(Base):
    """A scoped bearer token ``dl_<prefix>_<secret>``. Only the SHA-256 of the whole token is
    kept; the prefix lets an operator recognise a token in a list without revealing it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    admin_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("admin_users.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AdminSession(Base):
    """A signed-in admin in the browser (the console). Only the token's SHA-256 is stored."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Sliding idle expiry (settings.web.console_idle_minutes).
    last_seen_at: Mapped[datetime]
    # Password accepted, TOTP code not yet: such a session opens no console page.
    awaiting_code: Mapped[bool] = mapped_column(default=False)


class AdminPasswordReset(Base):
    """A single-use, expiring link to choose a new console password, mailed to the staff
    member. Only the token's SHA-256 is stored."""

    __tablename__ = "admin_password_resets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
