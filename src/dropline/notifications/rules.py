"""Which events mail the shopper, with which template, which mail is marketing, when a failed
send is retried, and the unsubscribe link's token. Pure: no session, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

__all__ = ["EVENT_TEMPLATES", "LEASE_SECONDS", "MARKETING", "STALE_AFTER", "SUBJECTS",
           "is_stale", "read_unsubscribe_token", "retry_delay_seconds",
           "unsubscribe_signature_matches", "unsubscribe_token"]

# event type -> template (notifications/templates/<template>.txt and .html)
EVENT_TEMPLATES: Mapping[str, str] = {
    "order.paid": "order_confirmation",
    "order.shipped": "shipped",
    "order.delivered": "delivered",
    "order.cancelled": "cancelled",
    "order.refunded": "refund_issued",
}

# template -> subject, formatted with the mail's context
SUBJECTS: Mapping[str, str] = {
    "order_confirmation": "Your {shop_name} order {order_id} is confirmed",
    "shipped": "Your {shop_name} order {order_id} is on its way",
    "delivered": "Your {shop_name} order {order_id} was delivered",
    "cancelled": "Your {shop_name} order {order_id} is cancelled",
    "refund_issued": "A refund of {refund_amount} for your {shop_name} order {order_id}",
    "out_for_delivery": "Your {shop_name} order {order_id} arrives today, {window}",
    "waitlist_offer": "{drop_name}: units are held for you until {offer_ends}",
    "drop_announcement": "{drop_name} drops on {drop_starts}",
    "early_access_open": "Early access to {drop_name} is open",
    # Membership notices (receipts, dunning, a waitlist spot): written whole by memberships.
    "membership_notice": "{subject}",
}

# Marketing mail: sent only to customers who have not unsubscribed, with a one-click
# unsubscribe link (RFC 8058). Every other template is about something the customer did (an
# order, joining a waitlist) and is sent regardless.
MARKETING: frozenset[str] = frozenset({"drop_announcement", "early_access_open"})

# A mail not sent within this long of its event is not sent at all: a confirmation weeks late
# is worse than none (an outage, or history written through the event log: imports, the demo).
STALE_AFTER = timedelta(days=2)

# A claimed mail is not claimed again for this long: a sender that crashed mid-send is
# retried after it, with the same Message-ID.
LEASE_SECONDS = 300


def retry_delay_seconds(attempts: int) -> int:
    """After the n-th failed attempt: 1, 2, 4 ... minutes, at most six hours."""
    return int(min(60 * 2 ** max(attempts - 1, 0), 6 * 3600))


def is_stale(queued_at: datetime, now: datetime) -> bool:
    return now - queued_at > STALE_AFTER


def _signature(secret: str, mail_id: int, customer_id: int) -> str:
    digest = hmac.new(secret.encode(), f"unsubscribe:{mail_id}:{customer_id}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def unsubscribe_token(secret: str, *, mail_id: int, customer_id: int) -> str:
    """The token of one marketing mail's unsubscribe link: the mail's id and an HMAC (under the
    app's secret key) of it and its recipient, so it cannot be guessed or altered; the same
    every time the mail is rendered, so a resend carries the same link."""
    return f"{mail_id}.{_signature(secret, mail_id, customer_id)}"


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """(mail id, signature) from a token's text, or None if it is not shaped like one."""
    mail_id, dot, signature = token.partition(".")
    if not dot or not mail_id.isdigit() or len(mail_id) > 18 or not 0 < len(signature) <= 64:
        return None
    return int(mail_id), signature


def unsubscribe_signature_matches(secret: str, *, mail_id: int, customer_id: int,
                                  signature: str) -> bool:
    return hmac.compare_digest(signature.encode(),
                               _signature(secret, mail_id, customer_id).encode())
