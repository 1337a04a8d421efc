"""Which events mail the shopper, with which template, and when a failed send is retried.
Pure: no session, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

__all__ = ["EVENT_TEMPLATES", "LEASE_SECONDS", "STALE_AFTER", "SUBJECTS", "is_stale",
           "retry_delay_seconds"]

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
}

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
