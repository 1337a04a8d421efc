"""Reconciliation against the provider's own list of charges (``PaymentProvider.list_charges``):
``dropline payments reconcile --since ...``.

For a period, every charge the provider made is matched to the shop's order payment by the
idempotency key it was made with, and every payment the shop holds as paid to a succeeded
charge:

    charge decided, payment still pending      repaired: settled as the provider says (paid;
                                               or declined, units given back), as its webhook
                                               would have (``payment_events``)
    charge succeeded, no paid order            left: a ``charge_without_order`` discrepancy
      (the payment was declined here, or no      (money taken for nothing: an admin refunds it
      payment has its key)                       or fulfils it)
    paid order, no succeeded charge            left: a ``paid_without_charge`` discrepancy
                                               (goods owed money never taken)

Repairs move a payment only out of pending (the first settler wins), and a discrepancy is kept
once per (kind, reference), so a second pass over the same period changes nothing. The admin
overview lists the open discrepancies. Membership charges (keys ``<charge key>:<attempt>``) are
the memberships domain's and are recognised and left alone; so are charges still deciding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.db import Database
from dropline.memberships.models import MembershipCharge
from dropline.orders.policy import CheckoutPolicy
from dropline.payment_events import settle_reported
from dropline.payments.models import Payment, PaymentDiscrepancy, PaymentStatus
from dropline.payments.provider import ChargeResult, ListedCharge, PaymentProvider

__all__ = ["Reconciled", "open_discrepancies", "reconcile_payments"]


@dataclass
class Reconciled:
    listed: int = 0  # charges the provider listed for the period
    matched: int = 0  # of them, made for one of the shop's order payments and agreeing
    settled_paid: int = 0
    settled_declined: int = 0
    found: list[str] = field(default_factory=list)  # discrepancies new in this pass


def _membership_keys(session: Session, keys: Sequence[str]) -> set[str]:
    charge_keys = {key.rsplit(":", 1)[0] for key in keys if ":" in key}
    if not charge_keys:
        return set()
    known = set(session.scalars(select(MembershipCharge.idempotency_key).where(
        MembershipCharge.idempotency_key.in_(charge_keys))))
    return {key for key in keys if key.rsplit(":", 1)[0] in known}


def _note(session: Session, *, clock: Clock, kind: str, reference: str, order_id: int | None,
          amount: int, currency: str, detail: str) -> bool:
    """Keeps a discrepancy once; True if it is new."""
    exists = session.scalar(select(PaymentDiscrepancy.id).where(
        PaymentDiscrepancy.kind == kind, PaymentDiscrepancy.reference == reference))
    if exists is not None:
        return False
    session.add(PaymentDiscrepancy(kind=kind, reference=reference, order_id=order_id,
                                   amount=amount, currency=currency, detail=detail[:200],
                                   found_at=clock.now(), resolved_at=None))
    session.flush()
    return True


def reconcile_payments(db: Database, *, clock: Clock, provider: PaymentProvider,
                       policy: CheckoutPolicy, since: datetime,
                       until: datetime | None = None) -> Reconciled:
    """One pass over [since, until) (until: now); see the module docstring."""
    until = until or clock.now()
    charges = provider.list_charges(since=since, until=until)
    done = Reconciled(listed=len(charges))
    by_key: dict[str, ListedCharge] = {c.idempotency_key: c for c in charges
                                       if c.idempotency_key}
    with db.transaction() as session:
        payments = {p.idempotency_key: p for p in session.scalars(
            select(Payment).where(Payment.idempotency_key.in_(list(by_key))))}
        memberships = _membership_keys(session, list(by_key))
        to_settle = [(p.id, by_key[k]) for k, p in payments.items()
                     if p.status is PaymentStatus.pending and by_key[k].status != "pending"]
        for charge in charges:
            payment = payments.get(charge.idempotency_key)
            if charge.idempotency_key in memberships:
                continue
            if charge.status != "succeeded":
                done.matched += payment is not None and payment.status is PaymentStatus.declined
                continue
            if payment is None or payment.status is PaymentStatus.declined:
                why = ("succeeded at the provider for an order whose payment was declined "
                       "here: refund it or fulfil the order" if payment is not None else
                       "succeeded at the provider for no order of this shop's")
                if _note(session, clock=clock, kind="charge_without_order",
                         reference=charge.reference,
                         order_id=payment.order_id if payment is not None else None,
                         amount=charge.amount, currency=charge.currency, detail=why):
                    done.found.append(f"charge {charge.reference} without a paid order")
            elif payment.status is PaymentStatus.succeeded:
                done.matched += 1
        paid = session.scalars(select(Payment).where(
            Payment.status == PaymentStatus.succeeded, Payment.created_at >= since,
            Payment.created_at < until)).all()
        for payment in paid:
            charge = by_key.get(payment.idempotency_key)
            if charge is not None and charge.status == "succeeded":
                continue
            if _note(session, clock=clock, kind="paid_without_charge",
                     reference=payment.idempotency_key, order_id=payment.order_id,
                     amount=payment.amount, currency=payment.currency,
                     detail="paid here, but the provider lists no succeeded charge with its "
                            "key" if charge is None else
                            f"paid here, but the provider's charge is {charge.status}"):
                done.found.append(f"order {payment.order_id} paid without a charge")
    for payment_id, charge in to_settle:
        with db.transaction() as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            if payment.provider_ref is None:
                payment.provider_ref = charge.reference
            outcome = settle_reported(
                session, clock=clock, provider_name=provider.name, payment=payment,
                result=ChargeResult("succeeded", charge.reference)
                if charge.status == "succeeded" else
                ChargeResult("declined", charge.reference, "card_declined"), policy=policy)
        done.settled_paid += outcome == "settled-paid"
        done.settled_declined += outcome == "settled-declined"
    return done


def open_discrepancies(session: Session, *, limit: int = 50) -> list[PaymentDiscrepancy]:
    """What reconciliation left for an admin, newest first."""
    return list(session.scalars(select(PaymentDiscrepancy).where(
        PaymentDiscrepancy.resolved_at.is_(None)).order_by(
        PaymentDiscrepancy.id.desc()).limit(limit)))
