"""Webhook signatures in the Standard Webhooks scheme:

    webhook-id:        the event id (the receiver's de-duplication key)
    webhook-timestamp: unix seconds
    webhook-signature: "v1," + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, *, msg_id: str, timestamp: int, body: bytes, signature_header: str,
    now: int | None = None, tolerance_seconds: int = 300,
) -> bool:
    """What a receiver runs. Several space-separated signatures are allowed (secret rotation)."""
    if now is not None and abs(now - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, msg_id=msg_id, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signature_header.split())
