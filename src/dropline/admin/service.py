"""Admin users, their console sessions and TOTP second factor, and scoped API tokens."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from dropline import sessions
from dropline.admin.models import AdminSession, AdminUser, ApiToken, RecoveryCode
from dropline.clock import Clock
from dropline.customers.service import normalise_email
from dropline.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from dropline.passwords import check_password
from dropline.security import (
    Unsealable,
    hash_password,
    seal,
    token_digest,
    unseal,
    verify_password,
)

SCOPES: dict[str, str] = {
    "catalog:read": "read products, variants, stock and the stock ledger in the console",
    "catalog:write": "create and change products, variants, prices and stock",
    "orders:read": "read every order",
    "orders:refund": "refund orders, and cancel them before packing (which refunds)",
    "orders:fulfil": "move orders through allocation, picking, packing, shipping and "
                     "delivery; change addresses; pick lists, packing slips and labels",
    "discounts:manage": "create, read and withdraw discount codes",
    "invoices:manage": "issue and download invoices and credit notes",
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
    "customers:manage": "add notes to customers, export a customer's personal data",
    "customers:erase": "erase a customer's personal data (pseudonymise; orders stay)",
    "staff:manage": "invite staff, change their roles, deactivate them",
    "drops:read": "read drops, their live sell-through and post-drop reports",
    "fulfilment:read": "read the fulfilment network, today's windows and route sheets",
    "planning:read": "read drop cadence and cap planning",
    "mail:read": "read the mail templates and the outbox",
    "guides:read": "read the playbooks and the 90-day checklist",
    # The risk and pop-up domains' scopes, listed here too so every role and every process
    # knows them whatever was imported first (those modules add them again, harmlessly).
    "returns:manage": "receive, approve, deny and refund returns; serials; chargebacks; "
                      "return policies",
    "risk:review": "read the risk review queue and customer scores, decide cases, change "
                   "risk settings",
    "audit:read": "read and export the audit log",
    "popups:read": "read pop-ups, their conversion figures and experiments",
    "popups:write": "plan, stock, open, close and restock pop-ups; experiments",
    "popups:sell": "ring up counter sales at a pop-up",
}
log = logging.getLogger(__name__)
ALL_SCOPES = "*"


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once; only its digest is stored


def create_admin_user(
    session: Session, *, clock: Clock, email: str, password: str, name: str = ""
) -> AdminUser:
    email = normalise_email(email)
    check_password(password, email=email)
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
    if user.deactivated_at is not None:  # the same answer: nothing tells the account apart
        raise NotAuthenticated("wrong email or password")
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
# Between the password and the code: long enough to open an authenticator app.
CODE_WAIT = timedelta(minutes=5)
RECOVERY_CODES = 10


def start_admin_session(session: Session, *, clock: Clock, user: AdminUser) -> str:
    """Returns the raw cookie token; only its digest is stored. A user with a confirmed second
    factor gets a session that waits for the code (``complete_second_factor``) and opens no
    page until then."""
    if user.totp_confirmed_at is not None:
        return sessions.start(session, clock=clock, model=AdminSession, owner="admin_user_id",
                              owner_id=user.id, lifetime=CODE_WAIT, awaiting_code=True)
    return sessions.start(session, clock=clock, model=AdminSession, owner="admin_user_id",
                          owner_id=user.id, lifetime=timedelta(hours=ADMIN_SESSION_HOURS))


def admin_for_session(session: Session, *, clock: Clock, token: str,
                      idle_minutes: int) -> AdminUser | None:
    """The admin of a live, fully signed-in session used within ``idle_minutes`` (which
    slides its expiry)."""
    user_id = sessions.owner_of(session, clock=clock, model=AdminSession,
                                owner=AdminSession.admin_user_id, token=token,
                                idle=timedelta(minutes=idle_minutes),
                                where=(AdminSession.awaiting_code.is_(False),))
    user = session.get(AdminUser, user_id) if user_id is not None else None
    return user if user is not None and user.deactivated_at is None else None


def admin_awaiting_code(session: Session, *, clock: Clock, token: str) -> AdminUser | None:
    """The admin of a session whose password was accepted and whose code is awaited."""
    user_id = sessions.owner_of(session, clock=clock, model=AdminSession,
                                owner=AdminSession.admin_user_id, token=token, idle=CODE_WAIT,
                                where=(AdminSession.awaiting_code.is_(True),))
    return session.get(AdminUser, user_id) if user_id is not None else None


def end_admin_session(session: Session, *, clock: Clock, token: str) -> None:
    sessions.revoke(session, clock=clock, model=AdminSession, token=token)


# --- the TOTP second factor (RFC 6238: 6 digits, 30-second steps) --------------------------

def _code_digest(code: str) -> str:
    return token_digest(code.replace("-", "").replace(" ", "").lower())


TOTP_PURPOSE = "admin totp secret"


def _seal_totp(secret: str, secret_key: str) -> str:
    return seal(secret, secret_key=secret_key, purpose=TOTP_PURPOSE)


def totp_secret(user: AdminUser, *, secret_key: str) -> str | None:
    """The user's TOTP key in the clear (it is stored sealed: ``dropline.security.seal``), or
    None when none is enrolled or it was sealed under a secret key since changed (then only a
    recovery code or ``dropline admin reset-2fa`` lets the user back in)."""
    if user.totp_secret is None:
        return None
    try:
        return unseal(user.totp_secret, secret_key=secret_key, purpose=TOTP_PURPOSE)
    except Unsealable:
        log.warning("the TOTP key of admin user %s cannot be read: sealed under another "
                    "secret key", user.id)
        return None


def begin_totp(session: Session, *, user_id: int, secret_key: str) -> str:
    """A fresh secret for the user to enter in an authenticator app (returned in the clear,
    stored sealed under ``secret_key``); sign-in asks for codes only once a code from it
    confirms the enrolment (``confirm_totp``)."""
    user = _admin(session, user_id)
    if user.totp_confirmed_at is not None:
        raise InvalidState("two-factor sign-in is already on; ask an operator to reset it "
                           "(dropline admin reset-2fa) to enrol a new device")
    secret = pyotp.random_base32()
    user.totp_secret = _seal_totp(secret, secret_key)
    user.totp_last_step = None
    session.flush()
    return secret


def totp_uri(user: AdminUser, *, issuer: str, secret_key: str) -> str:
    """The otpauth:// URI an authenticator app reads (typed, or as a QR code)."""
    secret = totp_secret(user, secret_key=secret_key)
    if secret is None:
        raise InvalidState("no two-factor enrolment has started")
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def confirm_totp(session: Session, *, clock: Clock, user_id: int, code: str,
                 secret_key: str) -> list[str]:
    """Turns the second factor on once ``code`` matches the enrolled secret; returns the
    recovery codes, shown once (only their digests are kept)."""
    user = _admin(session, user_id)
    if user.totp_secret is None or user.totp_confirmed_at is not None:
        raise InvalidState("start the enrolment first")
    if not _accept_totp(user, code, clock=clock, secret_key=secret_key):
        raise InvalidInput("That code does not match; check the device's time and try again.",
                           field="code")
    user.totp_confirmed_at = clock.now()
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    session.execute(delete(RecoveryCode).where(RecoveryCode.admin_user_id == user.id))
    session.add_all(RecoveryCode(admin_user_id=user.id, code_hash=_code_digest(c))
                    for c in codes)
    session.flush()
    return codes


def _accept_totp(user: AdminUser, code: str, *, clock: Clock, secret_key: str) -> bool:
    """True for the code of the current step or one either side (clock drift), never for a
    step already used (a code seen over a shoulder cannot be replayed)."""
    code = code.strip().replace(" ", "")
    if user.totp_secret is None or not (len(code) == 6 and code.isdigit()):
        return False
    secret = totp_secret(user, secret_key=secret_key)
    if secret is None:
        return False
    totp, now = pyotp.TOTP(secret), clock.now()
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=offset * totp.interval)
        step = totp.timecode(moment)
        if (user.totp_last_step is None or step > user.totp_last_step) \
                and hmac.compare_digest(totp.at(moment), code):
            user.totp_last_step = step
            return True
    return False


def complete_second_factor(session: Session, *, clock: Clock, token: str, code: str,
                           secret_key: str) -> str:
    """Checks the code (TOTP, or an unused recovery code, which is spent) of a session awaiting
    it; on success that session ends and a full one starts (a new token: the one issued before
    the code never opens the console). Returns the new token."""
    user = admin_awaiting_code(session, clock=clock, token=token)
    if user is None:
        raise NotAuthenticated("sign in again: the code was not entered in time")
    if not (_accept_totp(user, code, clock=clock, secret_key=secret_key) or _spend_recovery_code(
            session, clock=clock, user_id=user.id, code=code)):
        session.flush()
        raise NotAuthenticated("Wrong code.", field="code")
    sessions.revoke(session, clock=clock, model=AdminSession, token=token)
    return sessions.start(session, clock=clock, model=AdminSession, owner="admin_user_id",
                          owner_id=user.id, lifetime=timedelta(hours=ADMIN_SESSION_HOURS))


def _spend_recovery_code(session: Session, *, clock: Clock, user_id: int, code: str) -> bool:
    if len(code) > 40:
        return False
    spent = session.execute(update(RecoveryCode).where(
        RecoveryCode.admin_user_id == user_id, RecoveryCode.code_hash == _code_digest(code),
        RecoveryCode.used_at.is_(None)).values(used_at=clock.now()))
    return spent.rowcount == 1


def recovery_codes_left(session: Session, *, user_id: int) -> int:
    return len(session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.admin_user_id == user_id, RecoveryCode.used_at.is_(None))).all())


def reset_second_factor(session: Session, *, clock: Clock, email: str) -> AdminUser:
    """The operator's way back in for a staff member who lost their device: the second factor
    and its recovery codes are removed and every session of theirs ends."""
    user = session.scalar(select(AdminUser).where(AdminUser.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"no admin user {normalise_email(email)}")
    user.totp_secret = user.totp_confirmed_at = user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.admin_user_id == user.id))
    sessions.revoke_all(session, clock=clock, model=AdminSession,
                        owner=AdminSession.admin_user_id, owner_id=user.id)
    session.flush()
    return user


def _admin(session: Session, user_id: int) -> AdminUser:
    user = session.get(AdminUser, user_id)
    if user is None:
        raise NotFound(f"admin user {user_id} not found")
    return user
