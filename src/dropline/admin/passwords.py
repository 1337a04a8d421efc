"""Console staff passwords: change (the current password required) and reset by a mailed,
single-use, expiring link, as customers have (``customers.service``). Either ends the staff
member's other console sessions and spends their unused reset links; the second factor, if
on, still guards the next sign-in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropline import sessions
from dropline.admin.models import AdminPasswordReset, AdminSession, AdminUser
from dropline.clock import Clock
from dropline.customers.service import normalise_email
from dropline.errors import InvalidInput, NotFound
from dropline.passwords import check_password
from dropline.security import hash_password, new_token, token_digest, verify_password

__all__ = ["StaffResetLink", "change_staff_password", "reset_staff_password",
           "start_staff_password_reset"]

INVALID_LINK = "This reset link is invalid, used or expired; ask for a new one."


def change_staff_password(session: Session, *, clock: Clock, user_id: int,
                          current_password: str, new_password: str,
                          current_token: str | None) -> AdminUser:
    """Sets a new password for a signed-in staff member who proves the current one; their
    other console sessions end (this one, ``current_token``, stays)."""
    user = session.get(AdminUser, user_id)
    if user is None:
        raise NotFound(f"admin user {user_id} not found")
    if not verify_password(user.password_hash, current_password):
        raise InvalidInput("That is not your current password.", field="current_password")
    check_password(new_password, email=user.email, field="new_password")
    _set_password(session, clock=clock, user=user, password=new_password,
                  keep_token=current_token)
    return user


@dataclass(frozen=True)
class StaffResetLink:
    user: AdminUser
    token: str  # for the email only; the table keeps its digest


def start_staff_password_reset(session: Session, *, clock: Clock, email: str,
                               lifetime: timedelta) -> StaffResetLink | None:
    """A new reset token for the staff account of ``email``, or None when there is none (the
    caller answers the same either way)."""
    user = session.scalar(select(AdminUser).where(AdminUser.email == normalise_email(email)))
    if user is None:
        return None
    token, now = new_token(), clock.now()
    session.add(AdminPasswordReset(token_hash=token_digest(token), admin_user_id=user.id,
                                   created_at=now, expires_at=now + lifetime))
    session.flush()
    return StaffResetLink(user, token)


def reset_staff_password(session: Session, *, clock: Clock, token: str,
                         new_password: str) -> AdminUser:
    """Spends a reset token (once, before it expires) on a new password; every session of the
    staff member ends and their other unused links are spent."""
    now = clock.now()
    reset = session.scalar(select(AdminPasswordReset).where(
        AdminPasswordReset.token_hash == token_digest(token[:200]),
        AdminPasswordReset.used_at.is_(None), AdminPasswordReset.expires_at > now))
    if reset is None:
        raise InvalidInput(INVALID_LINK, field="token")
    user = session.get(AdminUser, reset.admin_user_id)
    if user is None:
        raise InvalidInput(INVALID_LINK, field="token")
    # Checked before the token is spent: a refused password leaves the link usable.
    check_password(new_password, email=user.email, field="new_password")
    # One conditional UPDATE decides between two uses of the same link racing.
    spent = session.execute(update(AdminPasswordReset).where(
        AdminPasswordReset.id == reset.id, AdminPasswordReset.used_at.is_(None))
        .values(used_at=now))
    if spent.rowcount != 1:
        raise InvalidInput(INVALID_LINK, field="token")
    _set_password(session, clock=clock, user=user, password=new_password, keep_token=None)
    return user


def _set_password(session: Session, *, clock: Clock, user: AdminUser, password: str,
                  keep_token: str | None) -> None:
    user.password_hash = hash_password(password)
    session.execute(update(AdminPasswordReset).where(
        AdminPasswordReset.admin_user_id == user.id, AdminPasswordReset.used_at.is_(None))
        .values(used_at=clock.now()))
    sessions.revoke_all(session, clock=clock, model=AdminSession,
                        owner=AdminSession.admin_user_id, owner_id=user.id, keep=keep_token)
    session.flush()
