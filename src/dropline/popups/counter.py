"""Selling over the counter, and signing the buyer up there.

A counter sale is a checkout without a cart: the units come from the pop-up's own stock row
(one conditional UPDATE each), the card is present (the provider's ``charge_present`` through a
reader), and it shares the checkout's two halves (``orders.flows.write_pending_order`` and
``pay_order``), so the same crash/retry guarantees hold: the order is written and committed
first with a checkout reference derived from the sale's Idempotency-Key, then charged with the
payment's own key, then settled. The counter page generates that key when the sale is rung up
and keeps it in its offline outbox, so a sale made offline and sent on reconnect (or sent
twice) is one order.

Sign-up at the counter reuses the card token saved at the terminal (with the buyer's consent),
so it takes a tier and one tap; or staff email a sign-up link instead.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropline.catalog.service import take_stock
from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.discounts import service as discounts
from dropline.discounts.rules import LineFacts
from dropline.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    NotFound,
    OutOfStock,
    PaymentDeclined,
    ServiceUnavailable,
)
from dropline.events.service import record_event
from dropline.fulfilment.batch import record_counter_sale
from dropline.mail import EmailSender, OutgoingEmail
from dropline.memberships import perks
from dropline.memberships import service as members
from dropline.memberships.config import MembershipConfig
from dropline.memberships.flows import attempt_charge
from dropline.memberships.models import ChargeKind, ChargeStatus, Membership, MembershipCharge
from dropline.money import format_money as money
from dropline.orders.flows import (
    draft_lines,
    pay_order,
    return_cart_stock,
    taxed,
    write_pending_order,
)
from dropline.orders.models import Order, OrderLine
from dropline.orders.rules import Totals
from dropline.orders.service import find_by_checkout_reference
from dropline.payments.charging import latest_payment
from dropline.payments.provider import (
    CardPresentProvider,
    CardRefused,
    ChargeResult,
    PaymentProvider,
    ProviderUnavailable,
    RecurringPaymentProvider,
    TerminalReading,
)
from dropline.popups import service
from dropline.popups.models import PopupSale, PopupStatus
from dropline.risk.disclosure import receipt_disclosures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CounterSaleRequest:
    popup_code: str
    lines: list[tuple[int, int]]  # (variant_id, quantity)
    reading: TerminalReading
    email: str
    name: str
    sale_reference: str  # stable per sale (derived from the Idempotency-Key)
    save_card: bool = True  # the buyer agreed to keep the card for a membership
    discount_code: str = ""  # a code the buyer gave at the till, or none


class _PresentCharge:
    """Puts a card-present charge behind the ``PaymentProvider.charge`` call ``pay_order``
    makes, so the counter shares checkout's settle logic unchanged."""

    def __init__(self, provider: CardPresentProvider, reading: TerminalReading) -> None:
        self._provider, self._reading = provider, reading
        self.name = provider.name

    def charge(self, *, amount: int, currency: str, card: object,
               idempotency_key: str) -> ChargeResult:
        return self._provider.charge_present(amount=amount, currency=currency,
                                             reading=self._reading,
                                             idempotency_key=idempotency_key)

    def refund(self, *, charge_reference: str, amount: int, currency: str,
               idempotency_key: str) -> str:
        return self._provider.refund(charge_reference=charge_reference, amount=amount,
                                     currency=currency, idempotency_key=idempotency_key)


def _write_sale(session: Session, *, clock: Clock, settings: Settings,
                request: CounterSaleRequest) -> Order:
    view = service.get_popup(session, request.popup_code)
    if view.popup.status is not PopupStatus.open:
        raise InvalidState(f"{request.popup_code} is {view.popup.status.value}; the counter "
                           "sells only while the pop-up is open")
    if not request.lines:
        raise InvalidInput("the basket is empty", field="lines")
    quantities: dict[int, int] = {}
    for variant_id, quantity in request.lines:
        quantities[variant_id] = quantities.get(variant_id, 0) + quantity
    customer = service.find_or_create_buyer(session, clock=clock, email=request.email,
                                            name=request.name, popup_code=request.popup_code)
    now = clock.now()
    try:
        lines = draft_lines(session, [(vid, None, q) for vid, q in quantities.items()])
    except KeyError as exc:
        raise NotFound(f"variant {exc.args[0]} not found", field="lines") from None
    currencies = {line.variant.currency for line in lines}
    if len(currencies) != 1:
        raise InvalidInput("one sale takes one currency", field="lines")
    member_units = [perks.member_price(session, customer_id=customer.id,
                                       variant_id=line.variant.id,
                                       base_amount=line.variant.price_amount, at=now)
                    for line in lines]
    code, applied = None, None
    if request.discount_code.strip():
        # The checkout's rules (``discounts.rules``): the code's scope (products, families,
        # tiers; a drop-scoped code covers none of a counter's goods), how it stacks with
        # member prices, and its caps; a refusal says why beside the field.
        tier = perks.active_tier(session, customer_id=customer.id, at=now)
        code, applied = discounts.price_with_code(
            session, code=request.discount_code, currency=lines[0].variant.currency,
            tier_slug=tier.slug if tier is not None else None, customer_id=customer.id, at=now,
            lines=[LineFacts(variant_id=line.variant.id, product_id=line.product.id,
                             family_slug=line.family.slug, drop_ids=frozenset(),
                             quantity=line.quantity,
                             list_unit_amount=line.variant.price_amount,
                             member_unit_amount=member)
                   for line, member in zip(lines, member_units, strict=True)])
        # One use taken by one conditional UPDATE before any stock: a used-up code refuses
        # the sale, and a rollback gives the use back with everything else.
        discounts.take_use(session, discount_id=code.id, customer_id=customer.id)
        member_units = list(applied.unit_amounts)
    line_discounts = {line.variant.id: (applied.line_discounts[i] if applied else 0)
                      for i, line in enumerate(lines)}
    lines = draft_lines(session, [(line.variant.id, unit, line.quantity)
                                  for line, unit in zip(lines, member_units, strict=True)],
                        discounts=line_discounts)
    for line in lines:  # sorted by variant id: one lock order on PostgreSQL
        if not take_stock(session, location_id=view.location.id, variant_id=line.variant.id,
                          quantity=line.quantity):
            raise OutOfStock(f"not enough {line.variant.sku} at {request.popup_code} for "
                             f"{line.quantity}", sku=line.variant.sku)
    subtotal = sum(line.line_total_amount for line in lines)
    # Sold and handed over in the shop's country: its rates apply, as at any till.
    discount = sum(line.discount_amount for line in lines)
    totals, vat, line_taxes = taxed(session, settings=settings, at=now, lines=lines,
                                    totals=Totals(currencies.pop(), subtotal, discount, 0),
                                    country=settings.shop.country)
    order = write_pending_order(
        session, clock=clock, customer=customer, lines=lines, totals=totals,
        checkout_reference=request.sale_reference, card=request.reading.card,
        shipping_address={"collected_at": request.popup_code}, location_id=view.location.id,
        fulfilment_path="pop-up", extra_payload={"popup": request.popup_code}, tax=vat,
        line_taxes=line_taxes, discount_code=code.code if code else None)
    if code is not None:
        discounts.record_redemption(session, clock=clock, discount_id=code.id,
                                    customer_id=customer.id, order_id=order.id,
                                    discount_amount=discount, delivery_discount_amount=0)
    session.add(PopupSale(popup_id=view.popup.id, order_id=order.id, customer_id=customer.id,
                          card_last4=request.reading.card.last4, sold_at=now))
    session.flush()
    record_counter_sale(session, clock=clock, order=order)
    record_event(session, clock=clock, type="popup.sale", subject_type="order",
                 subject_id=order.id, customer_id=customer.id,
                 payload={"popup": request.popup_code, "total_amount": order.total_amount,
                          "currency": order.currency,
                          "units": sum(line.quantity for line in lines)})
    return order


def sell(db: Database, *, clock: Clock, settings: Settings, provider: PaymentProvider,
         request: CounterSaleRequest) -> int:
    """Returns the paid order's id; raises PaymentDeclined (stock returned to the pop-up),
    OutOfStock / InvalidState / InvalidInput (nothing written). Resumable by reference."""
    if not hasattr(provider, "charge_present"):
        raise InvalidState(f"the payment provider {provider.name!r} takes no card-present "
                           "payments")
    with db.transaction() as session:
        order = find_by_checkout_reference(session, request.sale_reference)
        if order is None:
            order = _write_sale(session, clock=clock, settings=settings, request=request)
        payment = latest_payment(session, order.id)
    order_id = pay_order(db, clock=clock,
                         provider=_PresentCharge(provider, request.reading),  # type: ignore[arg-type]
                         order=order, payment=payment, card=request.reading.card,
                         on_payment_failed=functools.partial(_return_sale, clock=clock))
    if request.save_card and hasattr(provider, "save_card"):
        _keep_card(db, provider=provider, order_id=order_id,  # type: ignore[arg-type]
                   reading=request.reading)
    return order_id


def _return_sale(session: Session, order: Order, *, clock: Clock) -> None:
    """A declined card: the code's use and the units go back to the pop-up."""
    discounts.release(session, order_id=order.id)
    return_cart_stock(session, order, clock=clock)


def _keep_card(db: Database, *, provider: RecurringPaymentProvider, order_id: int,
               reading: TerminalReading) -> None:
    """Saves the card once per sale (a replay finds the token already there)."""
    with db.transaction() as session:
        if session.scalar(select(PopupSale.card_token).where(
                PopupSale.order_id == order_id)) is not None:
            return
    try:
        saved = provider.save_card(card=reading.card)
    except (CardRefused, ProviderUnavailable):
        return  # the sale stands; staff can still send a sign-up link
    with db.transaction() as session:
        session.execute(update(PopupSale).where(PopupSale.order_id == order_id,
                                                PopupSale.card_token.is_(None))
                        .values(card_token=saved.token))


@dataclass(frozen=True)
class SaleSummary:
    order_id: int
    popup_code: str
    email: str
    customer_id: int
    total_amount: int
    currency: str
    card_last4: str
    can_sign_up: bool
    lines: list[tuple[str, str, int, int]]  # product, variant, quantity, line total
    disclosures: list[str]  # the graded items' required disclosures, for the receipt
    discount_code: str | None = None
    discount_amount: int = 0
    tax_amount: int = 0
    tax_added_amount: int = 0


def sale_summary(session: Session, *, order_id: int) -> SaleSummary:
    row = session.execute(select(PopupSale, Order).join(Order, Order.id == PopupSale.order_id)
                          .where(PopupSale.order_id == order_id)).first()
    if row is None:
        raise NotFound(f"counter sale {order_id} not found")
    sale, order = row
    code = service.popup_code_of(session, sale.popup_id)
    order_lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)
                                  .order_by(OrderLine.id)).all()
    lines = [(li.product_name, li.variant_name, li.quantity, li.line_total_amount)
             for li in order_lines]
    return SaleSummary(order.id, code, order.email, order.customer_id, order.total_amount,
                       order.currency, sale.card_last4, sale.card_token is not None, lines,
                       receipt_disclosures(order_lines), order.discount_code,
                       order.discount_amount, order.tax_amount, order.tax_added_amount)


def receipt_email(summary: SaleSummary, *, shop_name: str) -> OutgoingEmail:
    body = [f"Thank you for shopping with {shop_name} at our pop-up ({summary.popup_code}).",
            "", f"Receipt for order {summary.order_id}:"]
    body += [f"  {qty} x {product} ({variant})  {money(total, summary.currency)}"
             for product, variant, qty, total in summary.lines]
    paid = money(summary.total_amount, summary.currency)
    body.append("")
    if summary.discount_amount:
        body.append(f"Discount ({summary.discount_code}): "
                    f"-{money(summary.discount_amount, summary.currency)}")
    if summary.tax_added_amount:
        body.append(f"VAT added: {money(summary.tax_added_amount, summary.currency)}")
    body.append(f"Total paid: {paid} (card ending {summary.card_last4})")
    if summary.tax_amount and not summary.tax_added_amount:
        body.append(f"Includes VAT of {money(summary.tax_amount, summary.currency)}")
    body += summary.disclosures
    return OutgoingEmail(to=summary.email, subject=f"Your receipt from {shop_name}",
                         text="\n".join(body) + "\n",
                         message_id=f"popup-receipt-{summary.order_id}")


def signup_link_email(summary: SaleSummary, *, shop_name: str, base_url: str) -> OutgoingEmail:
    link = (f"{base_url.rstrip('/')}/membership?utm_source={service.POP_UP_SOURCE}"
            f"&utm_campaign={summary.popup_code}")
    return OutgoingEmail(
        to=summary.email, subject=f"Join {shop_name} as a member",
        text=(f"Thanks for visiting our pop-up. Become a member for member prices and early "
              f"access to every drop:\n\n  {link}\n\nYour account uses this email address.\n"),
        message_id=f"popup-signup-link-{summary.order_id}")


def sign_up_at_counter(db: Database, *, clock: Clock, config: MembershipConfig,
                       provider: RecurringPaymentProvider, order_id: int,
                       tier_slug: str) -> int:
    """Starts a membership for the buyer of a counter sale on the card saved at the terminal;
    returns the membership id. The sale is the sign-up reference, so a second tap (or a replay
    from the outbox) resumes the same sign-up instead of starting another."""
    reference = f"popup-sale-{order_id}"
    with db.transaction() as session:
        membership = session.scalar(select(Membership).where(
            Membership.signup_reference == reference))
        if membership is None:
            sale = session.scalar(select(PopupSale).where(PopupSale.order_id == order_id))
            if sale is None:
                raise NotFound(f"counter sale {order_id} not found")
            if sale.card_token is None:
                raise InvalidState("no card was kept from this sale; send a sign-up link "
                                   "instead")
            tier = members.get_tier_by_slug(session, tier_slug)
            if members.live_membership(session, customer_id=sale.customer_id) is not None:
                raise AlreadyExists("this buyer is already a member")
            order = session.get(Order, order_id)
            assert order is not None
            method = members.save_payment_method(
                session, clock=clock, customer_id=sale.customer_id, provider=provider.name,
                token=sale.card_token, last4=sale.card_last4,
                fingerprint=latest_payment(session, order_id).card_fingerprint)
            membership, _ = members.start_membership(
                session, clock=clock, customer_id=sale.customer_id, tier=tier,
                payment_method_id=method.id, signup_reference=reference)
            record_event(session, clock=clock, type="popup.member_signed_up",
                         subject_type="membership", subject_id=membership.id,
                         customer_id=sale.customer_id,
                         payload={"popup": service.popup_code_of(session, sale.popup_id),
                                  "order_id": order_id, "tier": tier.slug})
        membership_id = membership.id
        charge = session.scalar(select(MembershipCharge).where(
            MembershipCharge.membership_id == membership_id,
            MembershipCharge.kind == ChargeKind.signup))
    if charge is not None and charge.status is ChargeStatus.pending:
        outcome = attempt_charge(db, clock=clock, config=config, provider=provider,
                                 charge_id=charge.id)
        if outcome in ("busy", "unavailable"):
            raise ServiceUnavailable("the payment provider is busy; tap again", retry_after=2)
        with db.transaction() as session:
            status = session.scalar(select(MembershipCharge.status).where(
                MembershipCharge.id == charge.id))
        if status is ChargeStatus.failed:
            raise PaymentDeclined("the saved card was declined for the membership")
    return membership_id



def send_after_commit(message: OutgoingEmail, sender: EmailSender) -> bool:
    """Sends a receipt or a sign-up link once the sale has committed. The message id is
    stable per order, so a replayed sale rewrites the same message rather than adding one; a
    mail failure never undoes a paid sale (it is logged, and the receipt can be resent)."""
    try:
        sender.send(message)
        return True
    except OSError as exc:  # what a sender raises, SMTP errors included (see dropline.mail)
        log.warning("could not send %s: %s", message.message_id, exc)
        return False
