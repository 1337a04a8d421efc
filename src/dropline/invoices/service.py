"""Issue invoices (one per order) and credit notes (one per refund), numbered without gaps.

Issuing is idempotent: an order's invoice, a refund's credit note, is issued once and then
returned as it is. Concurrent issues are ordered by locks taken in one order (the order's or
the refund's row, then the series' counter row), and the number is taken by one UPDATE of the
counter in the issuing transaction: a rollback gives it back, so the numbers that exist are
exactly 1..n. SQLite serialises writers, so the same holds there. Services flush, never
commit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.config import Settings
from dropline.errors import InvalidState, NotFound
from dropline.invoices.models import CreditNote, DocumentCounter, Invoice
from dropline.invoices.rules import InvoiceLine, credit_content, invoice_content, reference
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import Refund

__all__ = ["CreditNotes", "Seller", "get_credit_note", "get_invoice", "invoice_of",
           "issue_credit_note", "issue_invoice", "next_number", "seller_of"]

Seller = dict[str, str]  # name, vat_number, country


def seller_of(settings: Settings) -> Seller:
    shop = settings.shop
    return {"name": shop.name, "vat_number": shop.vat_number, "country": shop.country}
CAPTURED = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)


def next_number(session: Session, series: str) -> int:
    """The series' next number, taken in the caller's transaction (its row stays locked on
    PostgreSQL until commit)."""
    if session.get(DocumentCounter, series) is None:
        try:
            with session.begin_nested():
                session.add(DocumentCounter(series=series, last_number=0))
        except IntegrityError:  # another transaction created the series first
            pass
    number = session.execute(
        update(DocumentCounter).where(DocumentCounter.series == series)
        .values(last_number=DocumentCounter.last_number + 1)
        .returning(DocumentCounter.last_number)).scalar_one()
    return int(number)


def _lock_order(session: Session, order_id: int) -> Order:
    order = session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def _invoice_lines(session: Session, order: Order) -> list[InvoiceLine]:
    """The order's lines as the buyer paid for them (after discounts), with their VAT; prices
    entered without VAT get it added to the gross. Delivery is a line of its own."""
    added = order.tax_added_amount > 0
    lines = []
    for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                .order_by(OrderLine.id)):
        paid = line.line_total_amount - line.discount_amount
        lines.append(InvoiceLine(f"{line.product_name} · {line.variant_name} ({line.sku})",
                                 line.quantity, paid + (line.tax_amount if added else 0),
                                 line.tax_rate_bp, line.tax_amount))
    if order.shipping_amount:
        lines.append(InvoiceLine("Delivery", 1, order.shipping_amount
                                 + (order.shipping_tax_amount if added else 0),
                                 order.shipping_tax_rate_bp, order.shipping_tax_amount))
    return lines


def issue_invoice(session: Session, *, clock: Clock, order_id: int, seller: Seller) -> Invoice:
    """The order's invoice, issued now if it has none; the order must be paid."""
    order = _lock_order(session, order_id)
    existing = session.scalar(select(Invoice).where(Invoice.order_id == order_id))
    if existing is not None:
        return existing
    if order.status not in CAPTURED:
        raise InvalidState(f"order {order_id} is {order.status.value}; only a paid order is "
                           "invoiced")
    lines = _invoice_lines(session, order)
    buyer = {**{k: str(v) for k, v in (order.shipping_address or {}).items()},
             "email": order.email, "vat_number": order.vat_number}
    content = invoice_content(lines, seller=seller, buyer=buyer, order_id=order.id,
                              reverse_charge=order.reverse_charge)
    number = next_number(session, "invoice")
    invoice = Invoice(number=number, reference=reference("invoice", number), order_id=order.id,
                      currency=order.currency, net_amount=content["net_amount"],
                      tax_amount=content["tax_amount"], gross_amount=content["gross_amount"],
                      content=content, issued_at=clock.now())
    session.add(invoice)
    session.flush()
    return invoice


def issue_credit_note(session: Session, *, clock: Clock, refund_id: int,
                      seller: Seller) -> CreditNote:
    """The refund's credit note, issued now if it has none (the order's invoice too, if it was
    not issued yet): the refunded amount with its VAT reversed in proportion."""
    refund = session.scalar(select(Refund).where(Refund.id == refund_id).with_for_update())
    if refund is None:
        raise NotFound(f"refund {refund_id} not found")
    invoice = issue_invoice(session, clock=clock, order_id=refund.order_id, seller=seller)
    existing = session.scalar(select(CreditNote).where(CreditNote.refund_id == refund_id))
    if existing is not None:
        return existing
    content = credit_content(invoice.content, amount=refund.amount, reason=refund.reason,
                             invoice_reference=invoice.reference)
    number = next_number(session, "credit-note")
    note = CreditNote(number=number, reference=reference("credit-note", number),
                      invoice_id=invoice.id, refund_id=refund.id, currency=refund.currency,
                      net_amount=content["net_amount"], tax_amount=content["tax_amount"],
                      gross_amount=content["gross_amount"], content=content,
                      issued_at=clock.now())
    session.add(note)
    session.flush()
    return note


def invoice_of(session: Session, order_id: int) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.order_id == order_id))


def get_invoice(session: Session, reference_: str) -> Invoice:
    found = session.scalar(select(Invoice).where(Invoice.reference == reference_.upper()))
    if found is None:
        raise NotFound(f"invoice {reference_} not found")
    return found


def get_credit_note(session: Session, reference_: str) -> CreditNote:
    found = session.scalar(select(CreditNote).where(CreditNote.reference == reference_.upper()))
    if found is None:
        raise NotFound(f"credit note {reference_} not found")
    return found


@dataclass(frozen=True)
class CreditNotes:
    """``orders.policy.CreditNoteIssuer``: every settled refund's credit note, issued in the
    settling transaction (the order's invoice first, if it had none), by this seller."""

    seller: Seller

    def __call__(self, session: Session, *, clock: Clock, refund_id: int) -> CreditNote:
        return issue_credit_note(session, clock=clock, refund_id=refund_id, seller=self.seller)
