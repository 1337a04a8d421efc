"""Outgoing email: the senders behind the mail port (``dropline.mail``).

    EmailSender (Protocol)   send(message) -> message id   (dropline.mail)
    ├── FolderSender         writes each message as an .eml file into a folder (var/outbox by
    │                        default), where a developer opens it with any mail client or `cat`
    └── SmtpSender           production: one SMTP (optionally STARTTLS) connection per message

``sender_for(settings.mail)`` picks one (the composition root calls it): an ``smtp_url``
(``DROPLINE_SMTP_URL=smtp://user:pass@host:587``, ``smtps://`` for implicit TLS) selects SMTP,
otherwise the ``outbox_dir`` folder (``DROPLINE_EMAIL_DIR``, default ``var/outbox``).
Senders are called only after the change that caused the message has committed (the mail
outbox, ``notifications.jobs``, does that), so a rolled-back change never mails anyone.
"""

from __future__ import annotations

import email.utils
import smtplib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlparse

from dropline.config import MailSettings
from dropline.mail import EmailSender, OutgoingEmail

__all__ = ["EmailSender", "FolderSender", "OutgoingEmail", "SmtpSender", "sender_for"]

DEFAULT_SENDER = "Dropline <no-reply@dropline.example>"


def build_mime(message: OutgoingEmail, *, sender: str, cte: str | None = None) -> EmailMessage:
    mime = EmailMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(usegmt=True)
    mime["Message-ID"] = f"<{message.message_id}@dropline>"
    for name, value in message.headers:
        mime[name] = value
    mime.set_content(message.text, cte=cte)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html", cte=cte)
    return mime


class FolderSender:
    """Writes ``<message_id>.eml``; sending the same message twice rewrites the same file."""

    def __init__(self, directory: Path | str, *, sender: str = DEFAULT_SENDER) -> None:
        self.directory = Path(directory)
        self.sender = sender

    def send(self, message: OutgoingEmail) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in message.message_id)
        path = self.directory / f"{safe}.eml"
        tmp = path.with_suffix(".eml.tmp")
        # 8-bit body: readable with `cat` or `less`, not quoted-printable.
        tmp.write_bytes(bytes(build_mime(message, sender=self.sender, cte="8bit")))
        tmp.replace(path)  # a reader never sees half a message
        return message.message_id


class SmtpSender:
    def __init__(self, host: str, port: int = 587, *, username: str | None = None,
                 password: str | None = None, starttls: bool = True, implicit_tls: bool = False,
                 sender: str = DEFAULT_SENDER, timeout: float = 10.0) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.implicit_tls = starttls, implicit_tls
        self.sender, self.timeout = sender, timeout

    def send(self, message: OutgoingEmail) -> str:
        mime = build_mime(message, sender=self.sender)
        smtp_class = smtplib.SMTP_SSL if self.implicit_tls else smtplib.SMTP
        with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls and not self.implicit_tls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mime)
        return message.message_id


def sender_for(mail: MailSettings) -> EmailSender:
    """The sender the mail settings ask for: SMTP with an ``smtp_url``, else the outbox folder."""
    sender, url = mail.sender, mail.smtp_url
    if url:
        parsed = urlparse(url)
        implicit = parsed.scheme == "smtps"
        return SmtpSender(
            parsed.hostname or "localhost", parsed.port or (465 if implicit else 587),
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            # ?starttls=off: a relay on the same machine or network that offers no TLS
            starttls=not implicit and "starttls=off" not in parsed.query,
            implicit_tls=implicit, sender=sender)
    return FolderSender(mail.outbox_dir, sender=sender)
