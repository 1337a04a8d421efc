"""The shop's staff: invite with a role, change a role, deactivate (flush, never commit).

An invitation creates the account with a password nobody knows and a single-use link to
choose one: the staff password-reset token (``admin.passwords``), with a longer life. The
mail is sent by ``admin.flows.invite_staff`` once the transaction has committed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline import sessions
from dropline.admin.models import AdminSession, AdminUser, ApiToken
from dropline.admin.passwords import StaffResetLink, start_staff_password_reset
from dropline.admin.roles import Role, parse_role
from dropline.clock import Clock
from dropline.customers.schemas import PasswordResetRequest
from dropline.customers.service import normalise_email
from dropline.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from dropline.security import hash_password

__all__ = ["INVITE_LIFETIME", "change_role", "deactivate_staff", "invite_staff", "list_staff",
           "staff_by_email"]

INVITE_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Invitation:
    user: AdminUser
    link: StaffResetLink


def _valid_email(email: str) -> str:
    try:
        return PasswordResetRequest(email=email).email
    except ValueError:
        raise InvalidInput("Enter the staff member's email address.", field="email") from None


def invite_staff(session: Session, *, clock: Clock, email: str, role: str, name: str = ""
                 ) -> Invitation:
    address = normalise_email(_valid_email(email))
    chosen = parse_role(role)
    if len(name) > 120:
        raise InvalidInput("A name has at most 120 characters.", field="name")
    if session.scalar(select(AdminUser.id).where(AdminUser.email == address)) is not None:
        raise AlreadyExists(f"{address} is already on the staff", field="email")
    # A random password no one is told: the account opens only through the mailed link.
    user = AdminUser(email=address, name=name.strip(), role=chosen.value,
                     password_hash=hash_password(secrets.token_urlsafe(32)),
                     created_at=clock.now())
    session.add(user)
    session.flush()
    link = start_staff_password_reset(session, clock=clock, email=address,
                                      lifetime=INVITE_LIFETIME)
    assert link is not None
    return Invitation(user, link)


def list_staff(session: Session, *, limit: int = 50, offset: int = 0) -> list[AdminUser]:
    return list(session.scalars(select(AdminUser).order_by(AdminUser.id)
                                .limit(limit).offset(offset)))


def staff_by_email(session: Session, email: str) -> AdminUser:
    user = session.scalar(select(AdminUser).where(AdminUser.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"no staff member {normalise_email(email)}")
    return user


def _staff(session: Session, user_id: int) -> AdminUser:
    user = session.get(AdminUser, user_id)
    if user is None:
        raise NotFound(f"staff member {user_id} not found")
    return user


def _refuse_last_owner(session: Session, user: AdminUser) -> None:
    """The shop always keeps an active owner: nobody else can invite or change roles."""
    if user.role != Role.owner.value or user.deactivated_at is not None:
        return
    others = session.scalar(select(AdminUser.id).where(
        AdminUser.role == Role.owner.value, AdminUser.deactivated_at.is_(None),
        AdminUser.id != user.id).limit(1))
    if others is None:
        raise InvalidState("the shop's last active owner keeps the owner role; make another "
                           "member owner first", field="role")


def change_role(session: Session, *, user_id: int, role: str) -> AdminUser:
    user = _staff(session, user_id)
    chosen = parse_role(role)
    if chosen.value != user.role:
        _refuse_last_owner(session, user)
        user.role = chosen.value
        session.flush()
    return user


def deactivate_staff(session: Session, *, clock: Clock, user_id: int) -> AdminUser:
    """Signs the member out everywhere and revokes their API tokens; the row stays."""
    user = _staff(session, user_id)
    if user.deactivated_at is not None:
        return user
    _refuse_last_owner(session, user)
    now = clock.now()
    user.deactivated_at = now
    sessions.revoke_all(session, clock=clock, model=AdminSession,
                        owner=AdminSession.admin_user_id, owner_id=user.id)
    for token in session.scalars(select(ApiToken).where(ApiToken.admin_user_id == user.id,
                                                        ApiToken.revoked_at.is_(None))):
        token.revoked_at = now
    session.flush()
    return user
