"""Account flows that mail: sign-up and password reset. Each owns its transaction and sends its
email only once that has committed, so a rolled-back change never mails anyone.

Neither tells a caller whether an email address has an account: sign-up of a taken address and
a reset asked for an unknown one answer as the others do. The owner of a taken address gets a
note instead (someone tried to sign up as you: sign in, or reset your password)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from dropline.clock import Clock
from dropline.customers import service
from dropline.db import Database
from dropline.errors import AlreadyExists
from dropline.mail import EmailSender, OutgoingEmail

log = logging.getLogger(__name__)

RESET_PATH = "/reset-password"


@dataclass(frozen=True)
class MailContext:
    """What an account email needs besides its recipient."""

    sender: EmailSender
    shop_name: str
    base_url: str  # the shop's public address, links are built on it


def sign_up(db: Database, *, clock: Clock, mail: MailContext, email: str, password: str,
            name: str, acquisition_source: str, acquisition_campaign: str,
            session_days: int) -> str | None:
    """Creates the account and starts its session (returns the cookie token), or, when the
    address already has an account, mails its owner and returns None. A weak password is
    refused (``WeakPassword``) in both cases alike."""
    try:
        with db.transaction() as session:
            customer = service.register_customer(
                session, clock=clock, email=email, password=password, name=name,
                acquisition_source=acquisition_source,
                acquisition_campaign=acquisition_campaign)
            return service.start_session(session, clock=clock, customer=customer,
                                         days=session_days)
    except AlreadyExists:
        address = service.normalise_email(email)
        _send(mail.sender, OutgoingEmail(
            to=address, subject=f"Someone tried to create a {mail.shop_name} account",
            text=(f"Someone (perhaps you) tried to create a {mail.shop_name} account with this "
                  f"address, which already has one.\n\n"
                  f"Sign in: {mail.base_url.rstrip('/')}/sign-in\n"
                  f"Forgot your password? {mail.base_url.rstrip('/')}/forgot-password\n\n"
                  f"If it was not you, you can ignore this email.\n"),
            message_id=f"sign-up-taken-{uuid.uuid4().hex}"))
        return None


def request_password_reset(db: Database, *, clock: Clock, mail: MailContext, email: str,
                           lifetime: timedelta) -> None:
    """Mails a single-use reset link to the account of ``email``, if there is one."""
    with db.transaction() as session:
        link = service.start_password_reset(session, clock=clock, email=email,
                                            lifetime=lifetime)
        if link is None:
            return
        minutes = int(lifetime.total_seconds() // 60)
        message = OutgoingEmail(
            to=link.customer.email, subject=f"Reset your {mail.shop_name} password",
            text=(f"To choose a new password, open this link within {minutes} minutes:\n\n"
                  f"  {mail.base_url.rstrip('/')}{RESET_PATH}?token={quote(link.token)}\n\n"
                  f"The link works once. If you did not ask for it, ignore this email: your "
                  f"password stays as it is.\n"),
            message_id=f"password-reset-{uuid.uuid4().hex}")
    _send(mail.sender, message)


def _send(sender: EmailSender, message: OutgoingEmail) -> None:
    """A mail failure is logged, not shown: the answer must not differ by whether mail went."""
    try:
        sender.send(message)
    except OSError as exc:  # what a sender raises, SMTP errors included (see dropline.mail)
        log.warning("could not send %s: %s", message.message_id, exc)
