from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    # Captured once, at sign-up: every LTV cut starts from here.
    acquisition_source: Mapped[str] = mapped_column(String(64), default="direct", index=True)
    acquisition_campaign: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(index=True)
    # Set when the customer's personal data was erased (``customers.erasure``): the row stays
    # (orders point at it) with a pseudonymous email and no name.
    erased_at: Mapped[datetime | None]


class CustomerSession(Base):
    """A cookie session. Only a SHA-256 of the token is stored, so a database leak is no login."""

    __tablename__ = "customer_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Sliding idle expiry: a session unused for settings.web.session_idle_days is refused.
    last_seen_at: Mapped[datetime]


class PasswordReset(Base):
    """A password-reset link sent by email. Only the SHA-256 of its token is stored; it works
    once, until ``expires_at``, and using any of an account's links spends them all."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SignUpRequest(Base):
    """A sign-up waiting for its address to be confirmed: the account is created only when the
    link mailed to the address is used (once, before it expires), so sign-up answers alike
    whether or not the address already has an account (that owner is mailed a note instead)
    and sets no cookie either way. Only the token's SHA-256 and the password's hash are kept."""

    __tablename__ = "sign_up_requests"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), index=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    acquisition_source: Mapped[str] = mapped_column(String(64), default="direct")
    acquisition_campaign: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
