"""Staff account flows that mail: the console's password reset. The flow owns its transaction
and mails only once it has committed; the answer never says whether the address is a staff
account's."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from urllib.parse import quote

from dropline.admin import passwords
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
