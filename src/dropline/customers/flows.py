"""Account flows that mail: sign-up (and its confirmation) and password reset. Each owns its
transaction and sends its email only once that has committed, so a rolled-back change never
mails anyone.

Neither tells a caller whether an email address has an account, through the answer or beside
it: sign-up of a taken address and a reset asked for an unknown one answer as the others do,
with the same headers and no cookie, after the same password hashing and one email each. A new
address is mailed a link that creates the account (and signs it in); the owner of a taken one
gets a note instead (someone tried to sign up as you: sign in, or reset your password)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from dropline.clock import Clock
from dropline.customers import service
from dropline.db import Database
from dropline.mail import EmailSender, OutgoingEmail

log = logging.getLogger(__name__)

RESET_PATH = "/reset-password"
CONFIRM_PATH = "/sign-up/confirm"


@dataclass(frozen=True)
class MailContext:
    """What an account email needs besides its recipient."""

    sender: EmailSender
    shop_name: str
    base_url: str  # the shop's public address, links are built on it


def sign_up(db: Database, *, clock: Clock, mail: MailContext, email: str, password: str,
            name: str, acquisition_source: str, acquisition_campaign: str,
            lifetime: timedelta, next_path: str = "") -> None:
    """Mails the address either a link that creates the account (``confirm_sign_up``) or, when
    it already has one, a note to its owner. Nothing the caller sees differs: no account and
    no session exist until the link is used. A weak password is refused (``WeakPassword``)
    in both cases alike."""
    with db.transaction() as session:
        link = service.start_sign_up(
            session, clock=clock, email=email, password=password, name=name,
            acquisition_source=acquisition_source, acquisition_campaign=acquisition_campaign,
            lifetime=lifetime)
    address, base = service.normalise_email(email), mail.base_url.rstrip("/")
    if link is None:
        _send(mail.sender, OutgoingEmail(
            to=address, subject=f"Someone tried to create a {mail.shop_name} account",
            text=(f"Someone (perhaps you) tried to create a {mail.shop_name} account with this "
                  f"address, which already has one.\n\n"
                  f"Sign in: {base}/sign-in\n"
                  f"Forgot your password? {base}/forgot-password\n\n"
                  f"If it was not you, you can ignore this email.\n"),
            message_id=f"sign-up-taken-{uuid.uuid4().hex}"))
        return
    minutes = int(lifetime.total_seconds() // 60)
    target = f"&next={quote(next_path)}" if next_path else ""
    _send(mail.sender, OutgoingEmail(
        to=link.email, subject=f"Confirm your {mail.shop_name} account",
        text=(f"To finish creating your {mail.shop_name} account, open this link within "
              f"{minutes} minutes:\n\n"
              f"  {base}{CONFIRM_PATH}?token={quote(link.token)}{target}\n\n"
              f"If you did not sign up, ignore this email: no account is made.\n"),
        message_id=f"sign-up-confirm-{uuid.uuid4().hex}"))


def confirm_sign_up(db: Database, *, clock: Clock, token: str, session_days: int
                    ) -> tuple[int, str]:
    """Creates the account a sign-up link asked for and signs it in: (customer id, the session
    cookie's token)."""
    with db.transaction() as session:
        customer = service.confirm_sign_up(session, clock=clock, token=token)
        return customer.id, service.start_session(session, clock=clock, customer=customer,
                                                  days=session_days)


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
