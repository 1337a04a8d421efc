"""The mail port: what the shop asks of whatever sends its email. The senders (a folder for
development, SMTP for production) are adapters (``adapters.email``), chosen by the composition
root and handed to the code that mails (``Services.mailer``).

A sender raises ``OSError`` when the message could not be handed over (``smtplib``'s errors
are ``OSError``s), so callers need not know which sender they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["EmailSender", "OutgoingEmail"]


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    # Stable per logical message: a resend after a crash carries the same Message-ID, so a
    # receiving system (or a developer reading the folder) can de-duplicate.
    message_id: str
    html: str | None = None  # an HTML alternative to ``text``, when the message has one
    # Further headers, e.g. List-Unsubscribe and List-Unsubscribe-Post on marketing mail.
    headers: tuple[tuple[str, str], ...] = ()


class EmailSender(Protocol):
    def send(self, message: OutgoingEmail) -> str: ...
