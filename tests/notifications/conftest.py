"""A real SMTP server (aiosmtpd) on a free local port, collecting what it receives."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from dropline.adapters.email import SmtpSender
from dropline.notifications.jobs import send_mail_outbox


class Inbox:
    """The SMTP handler: every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd calls it by this name
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def send_outbox(db, clock, port: int, *, max_attempts: int = 3):
    """The outbox job, once, through the SMTP adapter to the test server on ``port``."""
    return send_mail_outbox(db, clock=clock, sender=SmtpSender("127.0.0.1", port,
                                                               starttls=False, timeout=5),
                            shop_name="Fig & Smoke", public_url="https://shop.example",
                            secret_key="test-secret", max_attempts=max_attempts)
