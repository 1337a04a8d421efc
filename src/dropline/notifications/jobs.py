"""Draining the order mail outbox (registered with the worker by the composition root).

At least once, never twice for one event by design: each mail row exists once per (event,
template); a pass claims a due row by one conditional UPDATE (pushing its next attempt out by
the lease), sends it outside any transaction, then marks it sent. A crash between the send and
the mark resends it after the lease with the same Message-ID, which receivers de-duplicate. A
failed send is retried with a growing delay and given up (``failed``) after ``max_attempts``;
a mail still unsent two days after its event is given up too (``rules.STALE_AFTER``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from dropline.clock import Clock
from dropline.db import Database
from dropline.mail import EmailSender
from dropline.notifications.models import MailOutboxItem, MailStatus
from dropline.notifications.rules import LEASE_SECONDS, is_stale, retry_delay_seconds
from dropline.notifications.service import compose

__all__ = ["OutboxReport", "send_mail_outbox"]

log = logging.getLogger("dropline.notifications")


@dataclass(frozen=True)
class OutboxReport:
    sent: int
    failed: int


def send_mail_outbox(db: Database, *, clock: Clock, sender: EmailSender, shop_name: str,
                     public_url: str, max_attempts: int, limit: int = 100) -> OutboxReport:
    now = clock.now()
    with db.transaction() as session:
        due = list(session.scalars(
            select(MailOutboxItem.id).where(MailOutboxItem.status == MailStatus.pending,
                                            MailOutboxItem.next_attempt_at <= now)
            .order_by(MailOutboxItem.id).limit(limit)))
    sent = failed = 0
    for item_id in due:
        with db.transaction() as session:
            claimed = session.execute(
                update(MailOutboxItem).where(
                    MailOutboxItem.id == item_id, MailOutboxItem.status == MailStatus.pending,
                    MailOutboxItem.next_attempt_at <= now)
                .values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS),
                        attempts=MailOutboxItem.attempts + 1)).rowcount
            if claimed != 1:  # another worker has it
                continue
            item = session.get(MailOutboxItem, item_id)
            assert item is not None
            attempts = item.attempts
            if is_stale(item.created_at, now):
                item.status, item.last_error = MailStatus.failed, "stale: not sent in time"
                failed += 1
                continue
            message = compose(session, item, shop_name=shop_name, public_url=public_url)
            if message is None:
                item.status, item.last_error = MailStatus.failed, "the order no longer exists"
                failed += 1
                continue
        try:
            sender.send(message)
        except OSError as exc:  # smtplib's errors are OSErrors (dropline.mail)
            log.warning("mail %s not sent (attempt %s): %s", item_id, attempts, exc)
            gave_up = attempts >= max_attempts
            with db.transaction() as session:
                session.execute(update(MailOutboxItem).where(MailOutboxItem.id == item_id)
                                .values(status=MailStatus.failed if gave_up
                                        else MailStatus.pending,
                                        next_attempt_at=clock.now() + timedelta(
                                            seconds=retry_delay_seconds(attempts)),
                                        last_error=str(exc)[:300]))
            failed += 1
            continue
        with db.transaction() as session:
            session.execute(update(MailOutboxItem).where(MailOutboxItem.id == item_id)
                            .values(status=MailStatus.sent, sent_at=clock.now()))
        sent += 1
    return OutboxReport(sent, failed)
