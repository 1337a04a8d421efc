"""Draining the mail outbox (registered with the worker by the composition root).

At least once, never twice for one event by design: each mail row exists once per (event,
template); a pass claims a due row by one conditional UPDATE (pushing its next attempt out by
the lease), sends it outside any transaction, then marks it sent. A crash between the send and
the mark resends it after the lease with the same Message-ID, which receivers de-duplicate. A
failed send is retried with a growing delay and given up (``failed``) after ``max_attempts``;
a mail still unsent two days after its event is given up too (``rules.STALE_AFTER``), and a
marketing mail whose customer unsubscribed meanwhile is skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from dropline.clock import Clock
from dropline.db import Database
from dropline.fulfilment.models import (
    BookingStatus,
    DeliveryWindow,
    RoutePlanRow,
    RouteRow,
    RouteStopRow,
    WindowBooking,
)
from dropline.fulfilment.rules import LONDON
from dropline.locations.models import Location
from dropline.mail import EmailSender
from dropline.notifications.models import MailOutboxItem, MailStatus
from dropline.notifications.rules import LEASE_SECONDS, is_stale, retry_delay_seconds
from dropline.notifications.service import compose, queue_order_mails
from dropline.orders.models import Order
from dropline.orders.rules import OrderStage

__all__ = ["OUT_FOR_DELIVERY_LOOKBACK", "OutboxReport", "queue_out_for_delivery",
           "send_mail_outbox"]

# A route that left longer ago than this is not announced any more (a worker that was down
# all day should not tell shoppers at night that their parcel "arrives today").
OUT_FOR_DELIVERY_LOOKBACK = timedelta(hours=3)

log = logging.getLogger("dropline.notifications")


@dataclass(frozen=True)
class OutboxReport:
    sent: int
    failed: int


def send_mail_outbox(db: Database, *, clock: Clock, sender: EmailSender, shop_name: str,
                     public_url: str, secret_key: str, max_attempts: int,
                     limit: int = 100, lease_seconds: int = LEASE_SECONDS) -> OutboxReport:
    """One pass over the due mails; ``secret_key`` signs marketing mail's unsubscribe
    links; a claimed mail whose sender died is claimed again after ``lease_seconds``."""
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
                .values(next_attempt_at=now + timedelta(seconds=lease_seconds),
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
            composed = compose(session, item, shop_name=shop_name, public_url=public_url,
                               secret_key=secret_key)
            message = composed.message
            if message is None:
                item.status, item.last_error = composed.status, composed.reason
                if composed.status is MailStatus.failed:  # a skipped mail is not a failure
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


def queue_out_for_delivery(db: Database, *, clock: Clock) -> int:
    """Queues "out for delivery" for each order on a hub route that has left (its
    ``departs_at`` has passed, within ``OUT_FOR_DELIVERY_LOOKBACK``): the window and the stop's
    expected time, in the hub's local time. No write marks a route's departure, so this job
    is its trigger; keyed by the booking, a mail exists once however often it runs (and
    however often the window is re-planned). Orders cancelled or delivered meanwhile are left
    out. Returns the mails queued."""
    now = clock.now()
    with db.transaction() as session:
        rows = session.execute(
            select(WindowBooking.id, Order.id, Order.customer_id, DeliveryWindow.starts_at,
                   DeliveryWindow.ends_at, RouteStopRow.eta, Location.name)
            .join(RouteStopRow, RouteStopRow.booking_id == WindowBooking.id)
            .join(RouteRow, RouteRow.id == RouteStopRow.route_id)
            .join(RoutePlanRow, RoutePlanRow.id == RouteRow.plan_id)
            .join(DeliveryWindow, DeliveryWindow.id == RoutePlanRow.window_id)
            .join(Location, Location.id == DeliveryWindow.location_id)
            .join(Order, Order.id == WindowBooking.order_id)
            .where(RouteRow.departs_at <= now,
                   RouteRow.departs_at > now - OUT_FOR_DELIVERY_LOOKBACK,
                   WindowBooking.status == BookingStatus.booked,
                   Order.stage.not_in([OrderStage.cancelled, OrderStage.delivered,
                                       OrderStage.returned]))
            .order_by(WindowBooking.id)).all()
        return queue_order_mails(session, clock=clock, template="out_for_delivery", mails=[
            (f"booking-{booking_id}", order_id, customer_id, {
                "hub": hub,
                "window": f"between {starts.astimezone(LONDON):%H:%M} and "
                          f"{ends.astimezone(LONDON):%H:%M}",
                "eta": f"{eta.astimezone(LONDON):%H:%M}"})
            for booking_id, order_id, customer_id, starts, ends, eta, hub in rows])
