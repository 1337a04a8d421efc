"""What the account tests share: reading the mail the app sent, and signing up through a form."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from fastapi.testclient import TestClient

TOKEN_IN_LINK = re.compile(r"/reset-password\?token=([A-Za-z0-9_\-%]+)")


def mails_to(outbox: Path, address: str, about: str = "") -> list[EmailMessage]:
    """Every message the app wrote for ``address`` (whose subject has ``about`` in it), oldest
    first."""
    found = []
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address and about in message["Subject"]:
            found.append(message)
    return found


def reset_token(message: EmailMessage) -> str:
    body = message.get_content()
    match = TOKEN_IN_LINK.search(body)
    assert match, body
    return match.group(1)


CONFIRM_LINK = re.compile(r"/sign-up/confirm\?token=([A-Za-z0-9_\-%]+)")


def sign_up_token(message: EmailMessage) -> str:
    body = message.get_content()
    match = CONFIRM_LINK.search(body)
    assert match, body
    return match.group(1)


def form_sign_up(client: TestClient, email: str, password: str) -> object:
    return client.post("/sign-up", data={"email": email, "password": password,
                                         "next": "/account"}, follow_redirects=False)
