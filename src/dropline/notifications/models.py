from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class MailStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # given up after ``mail.max_attempts``
    # Not sent by rule: marketing mail to a customer who unsubscribed after it was queued.
    skipped = "skipped"


class MailOutboxItem(Base):
    """The one mail outbox: one row per (event, template), written in the transaction of the
    event that causes it (an event subscriber, ``notifications.service.queue_mail``; the drop
    engine's batch, ``notifications.bulk``; a scheduled job for moments that are not a write,
    such as a route leaving its hub), so a committed change always has its mail queued and a
    rolled-back one never does; sent by ``notifications.jobs.send_mail_outbox`` after commit.
    The unique key is what makes a mail exist once per event however often anything is
    retried."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # DomainEvent.event_id, or for a mail with no one event of its own the key of what it
    # reports per recipient ("drop-7-announce-c42", "booking-9"): unique with the template.
    event_id: Mapped[str] = mapped_column(String(120))
    template: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    # No foreign key: the subscriber never refuses an event writer's transaction; a mail whose
    # order is gone is given up when it is due. NULL for mail about no order (drops).
    order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # The event's payload: what the mail says about the moment it reports (tracking numbers,
    # the refunded amount, the drop and its dates); an order itself is read when the mail is
    # rendered.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[MailStatus] = mapped_column(Enum(MailStatus, native_enum=False, length=16))
    attempts: Mapped[int] = mapped_column(default=0)
    # When it may next be tried; a claim pushes it out by the lease, a failure by the backoff.
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Marketing mail only: when its unsubscribe link was used (a link works once).
    unsubscribe_used_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("event_id", "template"),)


class MarketingOptOut(Base):
    """A customer who unsubscribed from marketing mail (drop announcements, early access):
    no marketing mail is queued for them, and one queued before is skipped. Opting back in
    (the account page) deletes the row. Transactional mail (orders, waitlist offers) is sent
    regardless."""

    __tablename__ = "marketing_opt_outs"

    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    unsubscribed_at: Mapped[datetime]
    # The mail whose link was used; NULL when the customer unsubscribed from their account.
    mail_id: Mapped[int | None] = mapped_column(BigInteger)
