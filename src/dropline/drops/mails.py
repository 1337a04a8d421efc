"""The drop's mails, queued through the one mail outbox (``notifications.service``):

* **drop announcement** (marketing), when a drop is created for a future start: to every
  customer who has not unsubscribed (the ``drop.created`` event's subscriber);
* **waitlist offer** (transactional), when units are held for a waitlisted shopper (the
  ``drop.waitlist_offered`` event's subscriber);
* **early access open** (marketing), to each member with early access when their own window
  opens (``queue_early_access_mails``, a scheduled job: the moment is a time, not a write).

Each is keyed by the drop (and the hold, for offers) per customer, so none is queued twice
however often an event is replayed or the job runs. The subscriber and the job are registered
by the composition root."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.drops.models import Drop, DropHold
from dropline.events.models import DomainEvent
from dropline.fulfilment.rules import LONDON
from dropline.memberships.perks import early_access_members
from dropline.notifications.service import queue_customer_mail, queue_marketing_mail

__all__ = ["queue_drop_mail", "queue_early_access_mails"]


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(LONDON):%a %d %b %Y, %H:%M} (UK time)"


def _drop_payload(drop: Drop) -> dict[str, object]:
    return {"drop_id": drop.id, "drop_name": drop.name, "drop_path": f"/drops/{drop.slug}",
            "drop_starts": _when(drop.starts_at), "per_person": drop.per_person_limit,
            "early_access": drop.early_access_minutes > 0,
            "early_access_starts": _when(
                drop.starts_at - timedelta(minutes=drop.early_access_minutes))}


def queue_drop_mail(session: Session, *, event: DomainEvent, clock: Clock) -> None:
    """The event subscriber: a new drop is announced, a waitlist offer is mailed."""
    if event.type == "drop.created":
        drop = session.get(Drop, int(event.subject_id))
        if drop is None or drop.starts_at <= clock.now():  # history, or a drop live already
            return
        # The customers the shop has as the drop is created (history written later, as the
        # demo does, announces to those who had signed up by then).
        queue_marketing_mail(session, clock=clock, key=f"drop-{drop.id}-announce",
                             template="drop_announcement",
                             customer_ids=session.scalars(select(Customer.id).where(
                                 Customer.created_at <= clock.now())),
                             payload=_drop_payload(drop))
    elif event.type == "drop.waitlist_offered" and event.customer_id is not None:
        drop = session.get(Drop, int(event.subject_id))
        hold = session.get(DropHold, int(event.payload["hold_id"]))
        if drop is None or hold is None:
            return
        queue_customer_mail(session, clock=clock, key=f"hold-{hold.id}",
                            template="waitlist_offer", customer_id=event.customer_id,
                            payload={**_drop_payload(drop), "quantity": hold.quantity,
                                     "offer_ends": _when(hold.expires_at)})


def queue_early_access_mails(db: Database, *, clock: Clock) -> int:
    """For each drop in its early-access period, mails every member whose own window has
    opened (the drop's start minus the shorter of their tier's lead and the drop's), once.
    Returns the mails queued."""
    now = clock.now()
    queued = 0
    with db.transaction() as session:
        drops = session.scalars(select(Drop).where(
            Drop.early_access_minutes > 0, Drop.starts_at > now).order_by(Drop.id)).all()
        open_drops = [d for d in drops
                      if d.starts_at - timedelta(minutes=d.early_access_minutes) <= now]
        if not open_drops:
            return 0
        members = early_access_members(session, at=now)
        for drop in open_drops:
            opened = [customer_id for customer_id, lead in members.items()
                      if drop.starts_at - timedelta(minutes=min(lead, drop.early_access_minutes))
                      <= now]
            queued += queue_marketing_mail(
                session, clock=clock, key=f"drop-{drop.id}-early", template="early_access_open",
                customer_ids=opened, payload=_drop_payload(drop))
    return queued
