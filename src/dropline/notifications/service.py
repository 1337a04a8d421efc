"""The order mail outbox: queued by an event subscriber in the event's transaction, composed
from the order when it is sent. Session first, keyword-only arguments; flush, never commit.

``queue_mail`` is registered by the composition root (``bootstrap.install_listeners``) as an
event subscriber; nothing registers itself at import time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.events.models import DomainEvent
from dropline.mail import OutgoingEmail
from dropline.money import format_money
from dropline.notifications.models import MailOutboxItem, MailStatus
from dropline.notifications.render import render_mail
from dropline.notifications.rules import EVENT_TEMPLATES
from dropline.orders.models import Order, OrderLine

__all__ = ["compose", "list_outbox", "mail_context", "queue_mail", "sample_context"]


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
    }


def _vat_words(order: Order, money: Any) -> str:
    """The receipt's VAT line: contained in the prices, added to them, or reverse-charged."""
    if order.reverse_charge:
        return f"Reverse charge: the buyer ({order.vat_number}) accounts for VAT"
    if order.tax_added_amount:
        return f"VAT added: {money(order.tax_added_amount)}"
    return f"Of which VAT: {money(order.tax_amount)}" if order.tax_amount else ""


def compose(session: Session, item: MailOutboxItem, *, shop_name: str,
            public_url: str) -> OutgoingEmail | None:
    """The mail as it is sent now; None if its order no longer exists."""
    order = session.get(Order, item.order_id)
    if order is None:
        return None
    rendered = render_mail(item.template, mail_context(
        session, order=order, payload=item.payload, shop_name=shop_name,
        public_url=public_url))
    # Stable per mail: a resend after a crash carries the same Message-ID.
    return OutgoingEmail(to=order.email, subject=rendered.subject, text=rendered.text,
                         html=rendered.html, message_id=f"mail-{item.id}-{item.template}")


def list_outbox(session: Session, *, status: MailStatus | None = None,
                limit: int = 50) -> list[MailOutboxItem]:
    query = select(MailOutboxItem).order_by(MailOutboxItem.id.desc())
    if status is not None:
        query = query.where(MailOutboxItem.status == status)
    return list(session.scalars(query.limit(limit)))


def sample_context(template: str, *, shop_name: str, public_url: str) -> dict[str, Any]:
    """A made-up order for previews (``dropline mail preview``): no database needed."""
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
    }
