"""Staff account flows that mail: the console's password reset and staff invitations. Each
flow owns its transaction and mails only once it has committed; the reset's answer never says
whether the address is a staff account's."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from urllib.parse import quote

from dropline.admin import passwords, staff
from dropline.admin.roles import ROLE_LABELS, Role
from dropline.clock import Clock
from dropline.customers.flows import MailContext
from dropline.db import Database
from dropline.mail import OutgoingEmail

log = logging.getLogger(__name__)

RESET_PATH = "/admin/reset-password"


def request_staff_password_reset(db: Database, *, clock: Clock, mail: MailContext, email: str,
                                 lifetime: timedelta) -> None:
    """Mails a single-use reset link to the staff account of ``email``, if there is one."""
    with db.transaction() as session:
        link = passwords.start_staff_password_reset(session, clock=clock, email=email,
                                                    lifetime=lifetime)
        if link is None:
            return
        minutes = int(lifetime.total_seconds() // 60)
        message = OutgoingEmail(
            to=link.user.email, subject=f"Reset your {mail.shop_name} console password",
            text=(f"To choose a new console password, open this link within {minutes} "
                  f"minutes:\n\n"
                  f"  {mail.base_url.rstrip('/')}{RESET_PATH}?token={quote(link.token)}\n\n"
                  f"The link works once. If you did not ask for it, ignore this email and tell "
                  f"whoever runs the shop: your password stays as it is.\n"),
            message_id=f"staff-password-reset-{uuid.uuid4().hex}")
    try:
        mail.sender.send(message)
    except OSError as exc:  # logged, not shown: the answer must not differ
        log.warning("could not send %s: %s", message.message_id, exc)


INVITE_SUBJECT = "You are invited to the {shop} console"


def invite_staff(db: Database, *, clock: Clock, mail: MailContext, email: str, role: str,
                 name: str = "") -> int:
    """Creates the staff account with its role and mails it a single-use link to choose a
    password (``admin.staff.invite_staff``), once committed. Returns the new member's id. A
    mail that cannot be sent is logged; ``dropline admin invite`` again is refused (the
    account exists) and ``/admin/forgot-password`` sends a fresh link."""
    with db.transaction() as session:
        invitation = staff.invite_staff(session, clock=clock, email=email, role=role,
                                        name=name)
        user_id, address = invitation.user.id, invitation.user.email
        days = int(staff.INVITE_LIFETIME.total_seconds() // 86400)
        message = OutgoingEmail(
            to=address, subject=INVITE_SUBJECT.format(shop=mail.shop_name),
            text=(f"You have been added to the {mail.shop_name} console as "
                  f"{ROLE_LABELS[Role(invitation.user.role)].lower()}.\n\n"
                  f"Choose your password within {days} days at this link:\n\n"
                  f"  {mail.base_url.rstrip('/')}{RESET_PATH}?token="
                  f"{quote(invitation.link.token)}\n\n"
                  f"The link works once. Then sign in at {mail.base_url.rstrip('/')}/admin.\n"),
            message_id=f"staff-invitation-{uuid.uuid4().hex}")
    try:
        mail.sender.send(message)
    except OSError as exc:
        log.warning("could not send %s: %s", message.message_id, exc)
    return user_id
