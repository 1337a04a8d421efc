"""The mail outbox: queued in the transaction of what it reports (an event subscriber, a job,
the drop engine's batch), composed when it is sent; marketing opt-outs and the unsubscribe
link. Session first, keyword-only arguments; flush, never commit.

``queue_mail`` is registered by the composition root (``bootstrap.install_listeners``) as an
event subscriber; nothing registers itself at import time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.errors import NotFound
from dropline.events.models import DomainEvent
from dropline.mail import OutgoingEmail
from dropline.money import format_money
from dropline.notifications.errors import UnsubscribeLinkInvalid, UnsubscribeLinkUsed
from dropline.notifications.models import MailOutboxItem, MailStatus, MarketingOptOut
from dropline.notifications.render import render_mail
from dropline.notifications.rules import (
    EVENT_TEMPLATES,
    MARKETING,
    read_unsubscribe_token,
    unsubscribe_signature_matches,
    unsubscribe_token,
)
from dropline.orders.models import Order, OrderLine

__all__ = ["Composed", "compose", "is_subscribed", "list_outbox", "mail_context",
           "opt_in_to_marketing", "opt_out_of_marketing", "opted_out", "outbox_counts",
           "queue_customer_mail", "queue_mail", "queue_marketing_mail", "queue_order_mails",
           "sample_context", "unsubscribe", "unsubscribe_mail", "unsubscribe_path"]

UNSUBSCRIBE_PATH = "/unsubscribe/"


def queue_mail(session: Session, *, event: DomainEvent, clock: Clock) -> None:
    """The subscriber: an order event with a template queues its mail, once per event and
    template (the table's unique key)."""
    template = EVENT_TEMPLATES.get(event.type)
    if template is None or event.subject_type != "order":
        return
    session.add(MailOutboxItem(
        event_id=event.event_id, template=template, customer_id=event.customer_id,
        order_id=int(event.subject_id), payload=dict(event.payload or {}),
        status=MailStatus.pending, attempts=0, next_attempt_at=event.occurred_at,
        last_error="", created_at=clock.now()))
    session.flush()


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> int:
    """One INSERT of outbox rows; a row whose (key, template) exists already is left out, so
    a job run twice, or two workers at once, queue a mail once. Returns the rows written."""
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # RETURNING counts the rows written (a multi-row INSERT's rowcount is not reliable).
    written = session.execute(dialect.insert(MailOutboxItem).values(rows)
                              .on_conflict_do_nothing(index_elements=["event_id", "template"])
                              .returning(MailOutboxItem.id)).all()
    session.flush()
    return len(written)


def _row(*, key: str, template: str, customer_id: int | None, order_id: int | None,
         payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"event_id": key, "template": template, "customer_id": customer_id,
            "order_id": order_id, "payload": payload, "status": MailStatus.pending,
            "attempts": 0, "next_attempt_at": now, "last_error": "", "created_at": now}


def queue_order_mails(session: Session, *, clock: Clock, template: str,
                      mails: Iterable[tuple[str, int, int | None, dict[str, Any]]]) -> int:
    """Order mails with no event of their own, each (key, order id, customer id, payload),
    once per key. Returns how many were queued now."""
    now = clock.now()
    return _insert_ignoring_duplicates(session, [
        _row(key=key, template=template, customer_id=customer_id, order_id=order_id,
             payload=payload, now=now) for key, order_id, customer_id, payload in mails])


def opted_out(session: Session) -> set[int]:
    """Every customer who unsubscribed from marketing mail (read whole: far fewer rows than an
    audience's ids, which would not fit one IN list)."""
    return set(session.scalars(select(MarketingOptOut.customer_id)))


def queue_customer_mail(session: Session, *, clock: Clock, key: str, template: str,
                        customer_id: int, payload: dict[str, Any],
                        order_id: int | None = None) -> bool:
    """One mail to one customer about ``key`` (an event id, or what the mail reports),
    once. Marketing mail is not queued for a customer who unsubscribed. Returns whether it
    was queued now."""
    if template in MARKETING:
        return queue_marketing_mail(session, clock=clock, key=key, template=template,
                                    customer_ids=[customer_id], payload=payload,
                                    order_id=order_id) == 1
    return _insert_ignoring_duplicates(session, [_row(
        key=key, template=template, customer_id=customer_id, order_id=order_id,
        payload=payload, now=clock.now())]) == 1


def queue_marketing_mail(session: Session, *, clock: Clock, key: str, template: str,
                         customer_ids: Iterable[int], payload: dict[str, Any],
                         order_id: int | None = None) -> int:
    """The same mail to many customers (a drop announcement), once each: keyed
    ``<key>-c<customer id>``; customers who unsubscribed from marketing are left out.
    Returns how many mails were queued now."""
    ids = sorted(set(customer_ids))
    if template in MARKETING:
        out = opted_out(session)
        ids = [customer_id for customer_id in ids if customer_id not in out]
    now = clock.now()
    queued = 0
    for start in range(0, len(ids), 500):  # bounded statements for a large audience
        queued += _insert_ignoring_duplicates(session, [
            _row(key=f"{key}-c{customer_id}", template=template, customer_id=customer_id,
                 order_id=order_id, payload=payload, now=now)
            for customer_id in ids[start:start + 500]])
    return queued


def _address(address: dict[str, Any]) -> str:
    return ", ".join(str(address[k]) for k in ("name", "line1", "line2", "city", "postcode")
                     if address.get(k))


def _when(moment: datetime) -> str:
    return moment.strftime("%d %b %Y")


def mail_context(session: Session, *, order: Order, payload: dict[str, Any], shop_name: str,
                 public_url: str) -> dict[str, Any]:
    """What every order mail shows (the order as it is now) and what its event said (the
    tracking numbers, the refunded amount, the reason)."""
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                            .order_by(OrderLine.id))

    def money(amount: int) -> str:
        return format_money(amount, order.currency)

    return {
        "shop_name": shop_name, "order_id": order.id,
        "name": str(order.shipping_address.get("name") or order.email),
        "placed": _when(order.created_at),
        "lines": [{"name": f"{line.product_name} · {line.variant_name}",
                   "quantity": line.quantity, "cancelled": line.cancelled_quantity,
                   "total": money(line.line_total_amount)} for line in lines],
        "shipping": money(order.shipping_amount), "total": money(order.total_amount),
        "discount_code": order.discount_code or "",
        "discount": money(order.discount_amount) if order.discount_amount else "",
        "refunded": money(order.refunded_amount) if order.refunded_amount else "",
        "vat": _vat_words(order, money),
        "address": _address(order.shipping_address),
        "order_url": f"{public_url.rstrip('/')}/orders/{order.id}",
        "parcels": list(payload.get("shipments", [])),
        "reason": str(payload.get("reason", "")),
        "refund_amount": money(int(payload.get("refund_amount", 0))),
        "hub": str(payload.get("hub", "")), "window": str(payload.get("window", "")),
        "eta": str(payload.get("eta", "")),
    }


def _vat_words(order: Order, money: Any) -> str:
    """The receipt's VAT line: contained in the prices, added to them, or reverse-charged."""
    if order.reverse_charge:
        return f"Reverse charge: the buyer ({order.vat_number}) accounts for VAT"
    if order.tax_added_amount:
        return f"VAT added: {money(order.tax_added_amount)}"
    return f"Of which VAT: {money(order.tax_amount)}" if order.tax_amount else ""


@dataclass(frozen=True)
class Composed:
    """What a due mail becomes: a message to send, or the status and reason it is not sent."""

    message: OutgoingEmail | None
    status: MailStatus = MailStatus.pending
    reason: str = ""


def unsubscribe_path(token: str) -> str:
    return f"{UNSUBSCRIBE_PATH}{token}"


def _customer_context(customer: Customer, payload: dict[str, Any],
                      shop_name: str) -> dict[str, Any]:
    return {**payload, "shop_name": shop_name, "name": customer.name or customer.email}


def compose(session: Session, item: MailOutboxItem, *, shop_name: str, public_url: str,
            secret_key: str) -> Composed:
    """The mail as it is sent now, or why it is not: its order or customer is gone, or the
    customer unsubscribed from marketing after it was queued."""
    base = public_url.rstrip("/")
    # Stable per mail: a resend after a crash carries the same Message-ID.
    message_id = f"mail-{item.id}-{item.template}"
    if item.order_id is not None:
        order = session.get(Order, item.order_id)
        if order is None:
            return Composed(None, MailStatus.failed, "the order no longer exists")
        rendered = render_mail(item.template, mail_context(
            session, order=order, payload=item.payload, shop_name=shop_name,
            public_url=public_url))
        return Composed(OutgoingEmail(to=order.email, subject=rendered.subject,
                                      text=rendered.text, html=rendered.html,
                                      message_id=message_id))
    customer = session.get(Customer, item.customer_id) if item.customer_id else None
    if customer is None:
        return Composed(None, MailStatus.failed, "the customer no longer exists")
    context = _customer_context(customer, dict(item.payload), shop_name)
    context["drop_url"] = f"{base}{context.get('drop_path', '/')}"
    headers: tuple[tuple[str, str], ...] = ()
    if item.template in MARKETING:
        if session.get(MarketingOptOut, customer.id) is not None:
            return Composed(None, MailStatus.skipped, "unsubscribed from marketing mail")
        url = base + unsubscribe_path(unsubscribe_token(secret_key, mail_id=item.id,
                                                        customer_id=customer.id))
        context["unsubscribe_url"] = url
        # RFC 8058 one-click: the receiving mail system POSTs "List-Unsubscribe=One-Click"
        # to the URL, with no cookie and no form token (see web.csrf).
        headers = (("List-Unsubscribe", f"<{url}>"),
                   ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    rendered = render_mail(item.template, context)
    return Composed(OutgoingEmail(to=customer.email, subject=rendered.subject,
                                  text=rendered.text, html=rendered.html,
                                  message_id=message_id, headers=headers))


# --------------------------------------------------------------------- marketing opt-outs


def is_subscribed(session: Session, *, customer_id: int) -> bool:
    return session.get(MarketingOptOut, customer_id) is None


def unsubscribe_mail(session: Session, *, token: str, secret_key: str) -> MailOutboxItem:
    """The marketing mail an unsubscribe token belongs to, if its link may still be used; a
    read, for the page the link opens. ``UnsubscribeLinkInvalid`` for a token that is forged,
    altered or of no marketing mail, ``UnsubscribeLinkUsed`` for a link used before."""
    parsed = read_unsubscribe_token(token)
    item = session.get(MailOutboxItem, parsed[0]) if parsed else None
    if parsed is None or item is None or item.customer_id is None or \
            item.template not in MARKETING or not unsubscribe_signature_matches(
                secret_key, mail_id=item.id, customer_id=item.customer_id,
                signature=parsed[1]):
        raise UnsubscribeLinkInvalid("This unsubscribe link is not valid. You can manage "
                                     "your mail from your account page.")
    if item.unsubscribe_used_at is not None:
        raise UnsubscribeLinkUsed("This unsubscribe link was used already. You can manage "
                                  "your mail from your account page.")
    return item


def unsubscribe(session: Session, *, clock: Clock, token: str, secret_key: str) -> int:
    """Uses a marketing mail's unsubscribe link: its customer gets no more marketing mail.
    Refused, changing nothing, as ``unsubscribe_mail`` refuses: a link works once, so an old
    mail cannot undo a later opt-in. Returns the customer's id."""
    item = unsubscribe_mail(session, token=token, secret_key=secret_key)
    customer_id = item.customer_id
    assert customer_id is not None  # unsubscribe_mail refuses mail with no customer
    now = clock.now()
    # One conditional UPDATE decides, so two clicks at once use the link once.
    used = session.execute(update(MailOutboxItem).where(
        MailOutboxItem.id == item.id, MailOutboxItem.unsubscribe_used_at.is_(None))
        .values(unsubscribe_used_at=now)).rowcount
    if used != 1:
        raise UnsubscribeLinkUsed("This unsubscribe link was used already. You can manage "
                                  "your mail from your account page.")
    _opt_out(session, customer_id=customer_id, now=now, mail_id=item.id)
    return customer_id


def _opt_out(session: Session, *, customer_id: int, now: datetime,
             mail_id: int | None) -> None:
    if session.get(MarketingOptOut, customer_id) is None:
        session.add(MarketingOptOut(customer_id=customer_id, unsubscribed_at=now,
                                    mail_id=mail_id))
    session.flush()


def opt_out_of_marketing(session: Session, *, clock: Clock, customer_id: int) -> None:
    """From the account page: no more marketing mail."""
    _opt_out(session, customer_id=customer_id, now=clock.now(), mail_id=None)


def opt_in_to_marketing(session: Session, *, customer_id: int) -> None:
    """From the account page: marketing mail again, from the next one queued."""
    session.execute(delete(MarketingOptOut).where(MarketingOptOut.customer_id == customer_id))
    session.flush()


def list_outbox(session: Session, *, status: MailStatus | None = None,
                limit: int = 50) -> list[MailOutboxItem]:
    query = select(MailOutboxItem).order_by(MailOutboxItem.id.desc())
    if status is not None:
        query = query.where(MailOutboxItem.status == status)
    return list(session.scalars(query.limit(limit)))


def outbox_counts(session: Session) -> dict[MailStatus, int]:
    """Mails by status, for the console."""
    counts = {status: int(n) for status, n in session.execute(
        select(MailOutboxItem.status, func.count()).group_by(MailOutboxItem.status))}
    return {status: counts.get(status, 0) for status in MailStatus}


def sample_context(template: str, *, shop_name: str, public_url: str) -> dict[str, Any]:
    """A made-up order, drop and customer for previews (``dropline mail preview``, the
    console): no database needed. Marketing previews carry a placeholder unsubscribe link."""
    base = public_url.rstrip("/")
    if template == "membership_notice":
        return {"shop_name": shop_name, "name": "Ada Lovelace", "kind": "receipt",
                "membership_id": 7, "subject": "Receipt: Founding, £10.00",
                "body": "Thank you. £10.00 was charged to your card ending 4242 for Founding, "
                        "07 Dec 2026 to 07 Jan 2027."}
    if template in ("drop_announcement", "early_access_open", "waitlist_offer"):
        return {"shop_name": shop_name, "name": "Ada Lovelace", "drop_name": "Fig Leaf No. 3",
                "drop_path": "/drops/fig-leaf-3", "drop_url": f"{base}/drops/fig-leaf-3",
                "drop_starts": "Sat 12 Dec 2026, 10:00 (UK time)",
                "early_access": True, "early_access_starts": "Sat 12 Dec 2026, 09:00 (UK time)",
                "per_person": 2, "quantity": 1, "offer_ends": "Sat 12 Dec 2026, 11:15 (UK time)",
                "unsubscribe_url": f"{base}{UNSUBSCRIBE_PATH}preview"}
    return {
        "shop_name": shop_name, "order_id": 1042, "name": "Ada Lovelace",
        "placed": "07 Dec 2026",
        "lines": [{"name": "Fig Leaf · 50 ml", "quantity": 2, "cancelled": 0,
                   "total": "£84.00"},
                  {"name": "Vetiver · 10 ml", "quantity": 1,
                   "cancelled": 1 if template == "refund_issued" else 0, "total": "£18.00"}],
        "shipping": "£0.00", "total": "£102.00", "discount_code": "", "discount": "",
        "vat": "Of which VAT: £17.00",
        "refunded": "£18.00" if template == "refund_issued" else "",
        "address": "Ada Lovelace, 1 Fournier St, London, E1 6QE",
        "order_url": f"{public_url.rstrip('/')}/orders/1042",
        "parcels": [{"carrier": "manual", "tracking_number": "RM123456785GB",
                     "tracking_url": "https://www.royalmail.com/track-your-item#/"
                                     "tracking-results/RM123456785GB"}],
        "reason": "changed my mind" if template == "cancelled" else "",
        "refund_amount": "£18.00",
        "hub": "Shoreditch", "window": "between 14:00 and 16:00", "eta": "14:40",
    }


def order_mails(session: Session, *, order_id: int) -> list[MailOutboxItem]:
    """The mails about one order, newest first (the console's order page)."""
    return list(session.scalars(select(MailOutboxItem).where(
        MailOutboxItem.order_id == order_id).order_by(MailOutboxItem.id.desc())))


def resend_mail(session: Session, *, clock: Clock, order_id: int, mail_id: int
                ) -> MailOutboxItem:
    """Queues a copy of an order's mail (a customer who lost it): a new outbox row with its
    own key, so it is sent again once, with a new Message-ID; the original stays as it was."""
    item = session.get(MailOutboxItem, mail_id)
    if item is None or item.order_id != order_id:
        raise NotFound(f"mail {mail_id} of order {order_id} not found")
    now = clock.now()
    base = item.event_id.split("-resend-")[0][:90]
    copy = MailOutboxItem(event_id=f"{base}-resend-{now:%Y%m%d%H%M%S%f}", template=item.template,
                          customer_id=item.customer_id, order_id=item.order_id,
                          payload=dict(item.payload or {}), status=MailStatus.pending,
                          attempts=0, next_attempt_at=now, last_error="", created_at=now)
    session.add(copy)
    session.flush()
    return copy
