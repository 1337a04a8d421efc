"""Export and erasure of a customer's personal data (flush, never commit).

Erasure pseudonymises; it deletes nothing the shop must keep:

* the customer row stays (orders point at it) with ``erased-<id>@erased.invalid`` as its
  email, no name or campaign, a password nobody knows, ``erased_at`` set; their sessions,
  reset links and pending sign-ups end;
* their orders stay with every amount, line and tax figure; each order's email becomes the
  pseudonym and its shipping address keeps only the country (what the VAT records need);
* free text that may name them goes: return notes and device ids, staff notes on them and
  on their orders; saved card references of their memberships are removed;
* issued invoices and credit notes are tax records kept as issued (a legal obligation);
* the audit trail is append-only and is not rewritten: it never holds the personal data
  this erases (``bootstrap.AUDITED_MODELS`` leaves out emails, names, addresses and notes),
  and the erasure itself appends one row (``customers`` update of ``erased_at``, with the
  staff member who erased as its actor).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.customers.models import Customer, CustomerSession, PasswordReset, SignUpRequest
from dropline.errors import InvalidState, NotFound
from dropline.memberships.models import Membership, MembershipPaymentMethod
from dropline.notes import service as notes
from dropline.orders.models import Order, OrderLine
from dropline.orders.rules import OrderStage
from dropline.payments.models import Payment
from dropline.risk.models import ReturnRequest
from dropline.security import hash_password

__all__ = ["ERASED_DOMAIN", "erase_customer", "export_customer", "pseudonym"]

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never a real mailbox
# Stages at which goods are still on their way: the address is needed until they arrive.
OPEN_STAGES = frozenset({OrderStage.paid, OrderStage.allocated, OrderStage.picking,
                         OrderStage.packed, OrderStage.shipped, OrderStage.delivery_failed})


def pseudonym(customer_id: int) -> str:
    return f"erased-{customer_id}@{ERASED_DOMAIN}"


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_customer(session: Session, *, customer_id: int) -> dict[str, Any]:
    """Everything the shop holds about the customer, as JSON-ready data (a subject access
    request): account, orders with lines, payments (card last 4 only), memberships, returns
    and staff notes."""
    customer = _customer(session, customer_id)
    orders = list(session.scalars(select(Order).where(Order.customer_id == customer_id)
                                  .order_by(Order.id)))
    lines: dict[int, list[OrderLine]] = {}
    for line in session.scalars(select(OrderLine).where(
            OrderLine.order_id.in_([o.id for o in orders])).order_by(OrderLine.id)):
        lines.setdefault(line.order_id, []).append(line)
    payments: dict[int, list[Payment]] = {}
    for payment in session.scalars(select(Payment).where(
            Payment.order_id.in_([o.id for o in orders])).order_by(Payment.id)):
        payments.setdefault(payment.order_id, []).append(payment)
    memberships = session.scalars(select(Membership).where(
        Membership.customer_id == customer_id).order_by(Membership.id))
    returns = session.scalars(select(ReturnRequest).where(
        ReturnRequest.customer_id == customer_id).order_by(ReturnRequest.id))
    return {
        "customer": {"id": customer.id, "email": customer.email, "name": customer.name,
                     "created_at": _iso(customer.created_at),
                     "acquisition_source": customer.acquisition_source,
                     "acquisition_campaign": customer.acquisition_campaign,
                     "erased_at": _iso(customer.erased_at)},
        "orders": [{
            "id": o.id, "email": o.email, "status": o.status.value, "stage": o.stage.value,
            "currency": o.currency, "total_amount": o.total_amount,
            "refunded_amount": o.refunded_amount, "tax_amount": o.tax_amount,
            "shipping_address": o.shipping_address, "created_at": _iso(o.created_at),
            "lines": [{"sku": li.sku, "product": li.product_name, "variant": li.variant_name,
                       "quantity": li.quantity, "unit_price_amount": li.unit_price_amount}
                      for li in lines.get(o.id, [])],
            "payments": [{"amount": p.amount, "status": p.status.value,
                          "card_last4": p.card_last4, "created_at": _iso(p.created_at)}
                         for p in payments.get(o.id, [])],
        } for o in orders],
        "memberships": [{"id": m.id, "status": m.status.value, "tier_id": m.tier_id,
                         "current_period_end": _iso(m.current_period_end)}
                        for m in memberships],
        "returns": [{"id": r.id, "order_id": r.order_id, "reason": r.reason, "note": r.note,
                     "status": r.status.value, "requested_at": _iso(r.requested_at)}
                    for r in returns],
        "notes": [{"author": n.author, "body": n.body, "created_at": _iso(n.created_at)}
                  for n in notes.notes_on(session, subject_type="customer",
                                          subject_id=customer_id)],
    }


def erase_customer(session: Session, *, clock: Clock, customer_id: int) -> Customer:
    """Pseudonymises the customer's personal data (see the module's text). Refused while an
    order of theirs is still on its way or a membership of theirs is live; erasing twice
    changes nothing the second time."""
    customer = _customer(session, customer_id)
    if customer.erased_at is not None:
        return customer
    orders = list(session.scalars(select(Order).where(Order.customer_id == customer_id)))
    open_orders = sorted(o.id for o in orders if o.stage in OPEN_STAGES)
    if open_orders:
        raise InvalidState(f"order(s) {', '.join(map(str, open_orders))} are not yet "
                           "delivered or cancelled: the address is still needed",
                           orders=open_orders)
    if session.scalar(select(Membership.id).where(
            Membership.live_customer_id == customer_id)) is not None:
        raise InvalidState("the customer has a live membership: cancel it first")
    alias, now = pseudonym(customer_id), clock.now()
    old_email = customer.email
    customer.email, customer.name, customer.acquisition_campaign = alias, "", ""
    customer.password_hash = hash_password(secrets.token_urlsafe(32))
    customer.erased_at = now
    for order in orders:
        order.email = alias
        order.shipping_address = {"country": str(order.shipping_address.get("country", ""))}
        notes.delete_notes_on(session, subject_type="order", subject_id=order.id)
    for ret in session.scalars(select(ReturnRequest).where(
            ReturnRequest.customer_id == customer_id)):
        ret.note, ret.device_id = "", ""
    notes.delete_notes_on(session, subject_type="customer", subject_id=customer_id)
    session.execute(delete(CustomerSession).where(CustomerSession.customer_id == customer_id))
    session.execute(delete(PasswordReset).where(PasswordReset.customer_id == customer_id))
    session.execute(delete(SignUpRequest).where(SignUpRequest.email == old_email))
    for membership in session.scalars(select(Membership).where(
            Membership.customer_id == customer_id, Membership.payment_method_id.is_not(None))):
        membership.payment_method_id = None
    session.flush()
    session.execute(delete(MembershipPaymentMethod).where(
        MembershipPaymentMethod.customer_id == customer_id))
    session.flush()
    return customer
