"""Admin users and scoped API tokens."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline import sessions
from dropline.admin.models import AdminSession, AdminUser, ApiToken
from dropline.clock import Clock
from dropline.customers.service import normalise_email
from dropline.errors import (
    AlreadyExists,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from dropline.security import hash_password, token_digest, verify_password

SCOPES: dict[str, str] = {
    "catalog:write": "create and change products, variants, prices and stock",
    "orders:read": "read every order",
    "orders:refund": "refund orders",
    "customers:read": "read customer accounts",
    "events:read": "read the domain event log",
    "webhooks:manage": "register and remove webhook endpoints, read deliveries",
    "tokens:manage": "create and revoke API tokens",
    "drops:manage": "create, schedule and restock drops, read drop reports",
    "media:write": "upload and remove product, variant, drop and tier images",
    "fulfilment:manage": "fulfilment network, rules, delivery windows and route plans",
    "memberships:read": "read members, metrics, the cohort map, segment rules and polls",
    "memberships:manage": "create tiers, change segment rules, recompute segments, open polls",
    "telemetry:read": "read cohorts, shop LTV and the decisions built on them",
}
ALL_SCOPES = "*"


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once; only its digest is stored


def create_admin_user(
    session: Session, *, clock: Clock, email: str, password: str, name: str = ""
) -> AdminUser:
    email = normalise_email(email)
    if session.scalar(select(AdminUser.id).where(AdminUser.email == email)) is not None:
        raise AlreadyExists(f"admin {email} already exists")
    user = AdminUser(email=email, name=name, password_hash=hash_password(password),
                     created_at=clock.now())
    session.add(user)
    session.flush()
    return user


def authenticate_admin(session: Session, *, email: str, password: str) -> AdminUser:
    user = session.scalar(select(AdminUser).where(AdminUser.email == normalise_email(email)))
    if not verify_password(user.password_hash if user else None, password):
        raise NotAuthenticated("wrong email or password")
    assert user is not None
    return user


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES) - {ALL_SCOPES})
    if unknown:
        raise InvalidInput(
            f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))} or *",
            field="scopes",
        )
    if not scopes:
        raise InvalidInput("a token needs at least one scope", field="scopes")
    return sorted(set(scopes))


def refuse_scope_escalation(requested: list[str], *, held: Sequence[str]) -> None:
    """A token may only grant what it holds: ``*`` only by a ``*`` holder, any other scope by a
    holder of that scope or of ``*``. (The CLI is the operator and issues without this check.)"""
    if ALL_SCOPES in held:
        return
    beyond = sorted(set(requested) - set(held))
    if beyond:
        raise PermissionDenied(
            f"a token can only grant scopes it holds; this one lacks {', '.join(beyond)}",
            scopes=beyond,
        )


def issue_token(
    session: Session,
    *,
    clock: Clock,
    name: str,
    scopes: list[str],
    admin_user_id: int | None = None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    scopes = validate_scopes(scopes)
    prefix = secrets.token_hex(4)
    secret = f"dl_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        name=name, prefix=prefix, token_hash=token_digest(secret), scopes=scopes,
        admin_user_id=admin_user_id, created_at=clock.now(), expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token=token, secret=secret)


def resolve_token(session: Session, *, clock: Clock, secret: str) -> ApiToken | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(secret)))
    now = clock.now()
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    return token


def has_scope(token: ApiToken, scope: str) -> bool:
    return ALL_SCOPES in token.scopes or scope in token.scopes


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, *, clock: Clock, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"API token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
    session.flush()
    return token


ADMIN_SESSION_HOURS = 12


def start_admin_session(session: Session, *, clock: Clock, user: AdminUser) -> str:
    """Returns the raw cookie token; only its digest is stored."""
    return sessions.start(session, clock=clock, model=AdminSession, owner="admin_user_id",
                          owner_id=user.id, lifetime=timedelta(hours=ADMIN_SESSION_HOURS))


def admin_for_session(session: Session, *, clock: Clock, token: str) -> AdminUser | None:
    user_id = sessions.owner_of(session, clock=clock, model=AdminSession,
                                owner=AdminSession.admin_user_id, token=token)
    return session.get(AdminUser, user_id) if user_id is not None else None


def end_admin_session(session: Session, *, clock: Clock, token: str) -> None:
    sessions.revoke(session, clock=clock, model=AdminSession, token=token)
