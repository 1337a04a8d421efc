"""Customer accounts and cookie sessions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline import sessions
from dropline.clock import Clock
from dropline.customers.models import Customer, CustomerSession
from dropline.errors import AlreadyExists, NotAuthenticated, NotFound
from dropline.events.service import record_event
from dropline.security import hash_password, verify_password


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
    email = normalise_email(email)
    if session.scalar(select(Customer.id).where(Customer.email == email)) is not None:
        raise AlreadyExists("an account with this email already exists; sign in instead",
                            field="email")
    customer = Customer(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
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


def customer_for_session(session: Session, *, clock: Clock, token: str) -> Customer | None:
    customer_id = sessions.owner_of(session, clock=clock, model=CustomerSession,
                                    owner=CustomerSession.customer_id, token=token)
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
