"""Customer accounts and cookie sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline import sessions
from dropline.clock import Clock
from dropline.customers.models import Customer, CustomerSession, PasswordReset, SignUpRequest
from dropline.errors import AlreadyExists, InvalidInput, NotAuthenticated, NotFound
from dropline.events.service import record_event
from dropline.passwords import check_password
from dropline.security import hash_password, new_token, token_digest, verify_password


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register_customer(
    session: Session,
    *,
    clock: Clock,
    email: str,
    password: str,
    name: str = "",
    acquisition_source: str = "direct",
    acquisition_campaign: str = "",
) -> Customer:
    """An account at once (a counter sale's shopper, the CLI); the storefront and the API sign
    up through ``start_sign_up`` and ``confirm_sign_up`` instead. Raises ``WeakPassword``
    before ``AlreadyExists``."""
    email = normalise_email(email)
    check_password(password, email=email)
    password_hash = hash_password(password)
    if session.scalar(select(Customer.id).where(Customer.email == email)) is not None:
        raise AlreadyExists("an account with this email already exists; sign in instead",
                            field="email")
    return _add_customer(session, clock=clock, email=email, password_hash=password_hash,
                         name=name, acquisition_source=acquisition_source,
                         acquisition_campaign=acquisition_campaign)


def _add_customer(session: Session, *, clock: Clock, email: str, password_hash: str, name: str,
                  acquisition_source: str, acquisition_campaign: str) -> Customer:
    customer = Customer(
        email=email,
        name=name.strip(),
        password_hash=password_hash,
        acquisition_source=acquisition_source.strip().lower() or "direct",
        acquisition_campaign=acquisition_campaign.strip(),
        created_at=clock.now(),
    )
    session.add(customer)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
        raise AlreadyExists("an account with this email already exists; sign in instead",
                            field="email") from exc
    record_event(
        session, clock=clock, type="customer.registered", subject_type="customer",
        subject_id=customer.id, customer_id=customer.id,
        payload={"acquisition_source": customer.acquisition_source,
                 "acquisition_campaign": customer.acquisition_campaign},
    )
    return customer


@dataclass(frozen=True)
class SignUpLink:
    email: str
    token: str  # for the email only; the table keeps its digest


def start_sign_up(session: Session, *, clock: Clock, email: str, password: str, name: str,
                  acquisition_source: str, acquisition_campaign: str,
                  lifetime: timedelta) -> SignUpLink | None:
    """Records a sign-up that waits for its address to be confirmed and returns the link's
    token, or None when the address already has an account (the caller mails its owner). The
    same work either way, up to the one row written: the password is checked (``WeakPassword``
    alike for both) and hashed before the address is looked up."""
    email = normalise_email(email)
    check_password(password, email=email)
    password_hash = hash_password(password)
    if session.scalar(select(Customer.id).where(Customer.email == email)) is not None:
        return None
    token, now = new_token(), clock.now()
    session.add(SignUpRequest(
        token_hash=token_digest(token), email=email, name=name.strip()[:120],
        password_hash=password_hash,
        acquisition_source=acquisition_source.strip().lower()[:64] or "direct",
        acquisition_campaign=acquisition_campaign.strip()[:120], created_at=now,
        expires_at=now + lifetime))
    session.flush()
    return SignUpLink(email, token)


SIGN_UP_LINK_REFUSED = "This sign-up link is invalid, used or expired; sign up again."


def confirm_sign_up(session: Session, *, clock: Clock, token: str) -> Customer:
    """Spends a sign-up link (once, before it expires) on the account it asked for. If the
    address got an account meanwhile (another link of it used first), ``AlreadyExists``."""
    now = clock.now()
    request = session.scalar(select(SignUpRequest).where(
        SignUpRequest.token_hash == token_digest(token[:200]), SignUpRequest.used_at.is_(None),
        SignUpRequest.expires_at > now))
    if request is None:
        raise InvalidInput(SIGN_UP_LINK_REFUSED, field="token")
    # One conditional UPDATE decides between two uses of the same link racing.
    spent = session.execute(update(SignUpRequest).where(
        SignUpRequest.id == request.id, SignUpRequest.used_at.is_(None)).values(used_at=now))
    if spent.rowcount != 1:
        raise InvalidInput(SIGN_UP_LINK_REFUSED, field="token")
    return _add_customer(session, clock=clock, email=request.email,
                         password_hash=request.password_hash, name=request.name,
                         acquisition_source=request.acquisition_source,
                         acquisition_campaign=request.acquisition_campaign)


def authenticate_customer(session: Session, *, email: str, password: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.email == normalise_email(email)))
    if not verify_password(customer.password_hash if customer else None, password):
        raise NotAuthenticated("wrong email or password")
    assert customer is not None
    return customer


def start_session(session: Session, *, clock: Clock, customer: Customer, days: int) -> str:
    """Returns the raw token for the cookie; only its digest is stored."""
    return sessions.start(session, clock=clock, model=CustomerSession, owner="customer_id",
                          owner_id=customer.id, lifetime=timedelta(days=days))


def customer_for_session(session: Session, *, clock: Clock, token: str,
                         idle_days: int) -> Customer | None:
    """The customer of a live session used within ``idle_days`` (which slides its expiry)."""
    customer_id = sessions.owner_of(session, clock=clock, model=CustomerSession,
                                    owner=CustomerSession.customer_id, token=token,
                                    idle=timedelta(days=idle_days))
    return session.get(Customer, customer_id) if customer_id is not None else None


def end_session(session: Session, *, clock: Clock, token: str) -> None:
    sessions.revoke(session, clock=clock, model=CustomerSession, token=token)


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


def list_customers(session: Session, *, limit: int = 100, offset: int = 0) -> list[Customer]:
    return list(session.scalars(select(Customer).order_by(Customer.id).limit(limit).offset(offset)))


def search_customers(session: Session, *, q: str = "", limit: int = 25, offset: int = 0
                     ) -> list[Customer]:
    """Newest first; ``q`` matches part of the email or the name, or a customer number."""
    query = select(Customer).order_by(Customer.id.desc())
    term = q.strip().lstrip("#")
    if term:
        like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses = [Customer.email.ilike(like, escape="\\"),
                   Customer.name.ilike(like, escape="\\")]
        if term.isdigit() and len(term) <= 15:
            clauses.append(Customer.id == int(term))
        query = query.where(or_(*clauses))
    return list(session.scalars(query.limit(limit).offset(offset)))


def change_password(session: Session, *, clock: Clock, customer_id: int, current_password: str,
                    new_password: str, current_token: str | None = None) -> Customer:
    """Sets a new password for a signed-in customer who proves the current one. Their other
    sessions end (a thief signed in elsewhere is signed out) and unused reset links die."""
    customer = get_customer(session, customer_id)
    if not verify_password(customer.password_hash, current_password):
        raise InvalidInput("That is not your current password.", field="current_password")
    check_password(new_password, email=customer.email, field="new_password")
    _set_password(session, clock=clock, customer=customer, password=new_password,
                  keep_token=current_token)
    return customer


@dataclass(frozen=True)
class ResetLink:
    customer: Customer
    token: str  # for the email only; the table keeps its digest


def start_password_reset(session: Session, *, clock: Clock, email: str,
                         lifetime: timedelta) -> ResetLink | None:
    """A new reset token for the account of ``email``, or None when there is none (the caller
    answers the same either way)."""
    customer = session.scalar(select(Customer).where(Customer.email == normalise_email(email)))
    if customer is None:
        return None
    token = new_token()
    now = clock.now()
    session.add(PasswordReset(token_hash=token_digest(token), customer_id=customer.id,
                              created_at=now, expires_at=now + lifetime))
    session.flush()
    return ResetLink(customer, token)


def reset_password(session: Session, *, clock: Clock, token: str, new_password: str) -> Customer:
    """Spends a reset token (once, before it expires) on a new password. Every other unused
    token of the account is spent with it and every session of the account ends."""
    now = clock.now()
    refused = InvalidInput("This reset link is invalid, used or expired; ask for a new one.",
                           field="token")
    reset = session.scalar(select(PasswordReset).where(
        PasswordReset.token_hash == token_digest(token[:200]), PasswordReset.used_at.is_(None),
        PasswordReset.expires_at > now))
    if reset is None:
        raise refused
    customer = get_customer(session, reset.customer_id)
    # Checked before the token is spent: a refused password leaves the link usable.
    check_password(new_password, email=customer.email, field="new_password")
    # One conditional UPDATE decides between two uses of the same link racing.
    spent = session.execute(update(PasswordReset).where(
        PasswordReset.id == reset.id, PasswordReset.used_at.is_(None)).values(used_at=now))
    if spent.rowcount != 1:
        raise refused
    _set_password(session, clock=clock, customer=customer, password=new_password,
                  keep_token=None)
    return customer


def _set_password(session: Session, *, clock: Clock, customer: Customer, password: str,
                  keep_token: str | None) -> None:
    now = clock.now()
    customer.password_hash = hash_password(password)
    session.execute(update(PasswordReset).where(
        PasswordReset.customer_id == customer.id, PasswordReset.used_at.is_(None))
        .values(used_at=now))
    sessions.revoke_all(session, clock=clock, model=CustomerSession,
                        owner=CustomerSession.customer_id, owner_id=customer.id, keep=keep_token)
    record_event(session, clock=clock, type="customer.password_changed",
                 subject_type="customer", subject_id=customer.id, customer_id=customer.id,
                 payload={})
    session.flush()
