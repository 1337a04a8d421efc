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


class MailOutboxItem(Base):
    """The order mail outbox: one row per (event, template), written in the transaction of
    the event that causes it (an event subscriber, ``notifications.service.queue_mail``), so
    a committed change always has its mail queued and a rolled-back one never does; sent by
    ``notifications.jobs.send_mail_outbox`` after commit. The unique key is what makes a mail
    exist once per event however often anything is retried."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))  # DomainEvent.event_id
    template: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    # No foreign key: the subscriber never refuses an event writer's transaction; a mail whose
    # order is gone is given up when it is due.
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # The event's payload: what the mail says about the moment it reports (tracking numbers,
    # the refunded amount); the order itself is read when the mail is rendered.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[MailStatus] = mapped_column(Enum(MailStatus, native_enum=False, length=16))
    attempts: Mapped[int] = mapped_column(default=0)
    # When it may next be tried; a claim pushes it out by the lease, a failure by the backoff.
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("event_id", "template"),)
