"""Drop orchestration: each function owns its transactions (and the card charge between them).

    place_hold      admission checked, units taken, hold written           (one transaction)
    checkout_hold   hold converted, order written; charged; settled         (orders.flows halves)
    purchase        both in one request ("express"): admission, the person counted, the
                    order written, then the units taken last (a hold written already
                    converted); charged; settled

A take that misses reclaims the drop's expired holds in a transaction of its own (so the
reclaim is kept even though the missed attempt rolls back), offers what came back to the
waitlist first, and retries once. PostgreSQL deadlock victims are retried (bounded).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.config import Settings
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.discounts import service as discounts
from dropline.drops import codes, service, waiting_room
from dropline.drops.errors import SoldOut
from dropline.drops.models import Drop, DropHold, HoldSource
from dropline.catalog.service import return_stock, take_stock
from dropline.errors import InvalidState, NotFound, OutOfStock
from dropline.orders import flows as orders
from dropline.orders.models import Order, OrderLine
from dropline.orders.policy import CheckoutPolicy, DeliveryChoice
from dropline.orders.rules import PricedLine
from dropline.pricing import discounted_totals
from dropline.orders.service import find_by_checkout_reference
from dropline.payments.charging import latest_payment
from dropline.payments.provider import CardToken, PaymentProvider

T = TypeVar("T")
TRANSACTION_ATTEMPTS = 8  # a crowd on a few slot rows can pick the same victim a few times


@dataclass(frozen=True)
class Shopper:
    """Who is asking, as the web layer resolved them: the customer and a digest of their
    session token (admission tokens are bound to it)."""

    customer_id: int
    session_digest: str


def in_transaction(db: Database, work: Callable[[Session], T]) -> T:
    """Runs ``work`` in one transaction, retrying it when PostgreSQL aborts it as a deadlock
    victim or a serialisation failure (both leave nothing behind)."""
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            with db.transaction() as session:
                return work(session)
        except OperationalError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in ("40P01", "40001") or attempt + 1 == TRANSACTION_ATTEMPTS:
                raise
            # Exponential, jittered backoff (5 ms .. 0.32 s) so the victims stop meeting again.
            time.sleep(0.005 * 2 ** min(attempt, 6) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _with_reclaim(db: Database, *, clock: Clock, drop_id: int, work: Callable[[Session], T],
                  early_access: service.EarlyAccess) -> T:
    try:
        return in_transaction(db, work)
    except SoldOut:
        left = in_transaction(db, lambda session: service.reclaim_and_offer(
            session, clock=clock, drop=service.get_drop(session, drop_id),
            early_access=early_access))
        if not left:
            raise
    return in_transaction(db, work)


def _admit(session: Session, *, clock: Clock, settings: Settings, drop: Drop, shopper: Shopper,
           admission_token: str | None, early_access: service.EarlyAccess) -> HoldSource:
    """With the queue on, the admission token is the proof of admission (it is issued only
    once the shopper's own opening time and place allow); with it off, early access is checked
    here directly."""
    if drop.queue_enabled:
        waiting_room.redeem_admission(session, clock=clock, secret=settings.web.secret_key, drop=drop,
                                 customer_id=shopper.customer_id,
                                 session_digest=shopper.session_digest, token=admission_token)
        return HoldSource.queue
    service.ensure_open(session, clock=clock, drop=drop, customer_id=shopper.customer_id,
                        early_access=early_access)
    return HoldSource.direct


def place_hold(
    db: Database, *, clock: Clock, settings: Settings, drop_id: int, shopper: Shopper,
    lines: Sequence[service.HoldLine], admission_token: str | None,
    early_access: service.EarlyAccess = service.membership_early_access,
    rng: random.Random | None = None,
) -> DropHold:
    def work(session: Session) -> DropHold:
        drop = service.get_drop(session, drop_id)
        source = _admit(session, clock=clock, settings=settings, drop=drop, shopper=shopper,
                        admission_token=admission_token, early_access=early_access)
        return service.create_hold(session, clock=clock, drop=drop,
                                   customer_id=shopper.customer_id, lines=lines,
                                   source=source, rng=rng)

    return _with_reclaim(db, clock=clock, drop_id=drop_id, work=work,
                         early_access=early_access)


def _order_from_hold(session: Session, *, clock: Clock, settings: Settings, hold: DropHold,
                     card: CardToken, shipping_address: dict[str, Any],
                     checkout_reference: str, discount_code: str = "",
                     delivery: DeliveryChoice | None = None,
                     policy: CheckoutPolicy | None = None) -> Order:
    order = _write_order(session, clock=clock, settings=settings, customer_id=hold.customer_id,
                         drop=service.get_drop(session, hold.drop_id),
                         lines=[(line["variant_id"], line["quantity"]) for line in hold.lines],
                         card=card, shipping_address=shipping_address,
                         checkout_reference=checkout_reference, discount_code=discount_code,
                         delivery=delivery, policy=policy)
    service.attach_order(session, hold=hold, order_id=order.id)
    return order


def _write_order(session: Session, *, clock: Clock, settings: Settings, customer_id: int,
                 drop: Drop, lines: Sequence[tuple[int, int]], card: CardToken,
                 shipping_address: dict[str, Any], checkout_reference: str,
                 discount_code: str = "", delivery: DeliveryChoice | None = None,
                 policy: CheckoutPolicy | None = None) -> Order:
    """A pending order of (variant id, quantity) lines, priced as any checkout's: a discount
    code (``drops.codes``; its use taken here, one conditional UPDATE), delivery, VAT.

    A picked hub window (``delivery``) is re-decided, priced and booked as the cart checkout
    does it (``policy``): the window's price is the delivery, the units leave from its hub
    (taken from the hub's stock row) and its place is booked in this transaction with the
    decision recorded, so a full window (409) rolls everything back. Without one, the order
    is decided after the drop (``fulfilment.batch``)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer not found")
    drafted = orders.draft_lines(session, [(variant_id, None, quantity)
                                           for variant_id, quantity in lines])
    window = None
    if delivery is not None:
        if policy is None:
            raise InvalidState("this way of buying takes no delivery window")
        window = policy.quote_window(
            session, customer_id=customer.id, choice=delivery, at=clock.now(),
            lines=[(line.variant.id, line.quantity) for line in drafted],
            postcode=str(shipping_address.get("postcode", "")))
    code, applied = None, None
    if discount_code.strip():
        code, applied = codes.price_drop_code(
            session, code=discount_code, drop_id=drop.id, customer_id=customer.id,
            currency=settings.shop.currency, at=clock.now(),
            lines=[(line.variant, line.product, line.family, line.quantity)
                   for line in drafted])
        discounts.take_use(session, discount_id=code.id, customer_id=customer.id)
        drafted = orders.draft_lines(
            session, [(line.variant.id, None, line.quantity) for line in drafted],
            discounts={line.variant.id: off for line, off
                       in zip(drafted, applied.line_discounts, strict=True)})
    totals, saved = discounted_totals(
        [PricedLine(line.variant.id, line.unit_price_amount, line.quantity,
                    line.variant.currency) for line in drafted],
        currency=settings.shop.currency, flat_shipping=settings.shop.flat_shipping_amount,
        free_shipping_threshold=settings.shop.free_shipping_threshold,
        discount_amount=sum(line.discount_amount for line in drafted),
        free_delivery=applied is not None and applied.free_delivery,
        delivery_amount=window.shipping_amount if window is not None else None)
    totals, vat, line_taxes = orders.taxed(
        session, settings=settings, at=clock.now(), lines=drafted, totals=totals,
        country=str(shipping_address.get("country") or ""))
    order = orders.write_pending_order(
        session, clock=clock, customer=customer, lines=drafted, totals=totals,
        checkout_reference=checkout_reference, card=card, shipping_address=shipping_address,
        location_id=window.location_id if window is not None else drop.location_id,
        tax=vat, line_taxes=line_taxes, discount_code=code.code if code else None,
        fulfilment_path="hub-window" if window is not None else "central",
        extra_payload={"window_id": window.window_id} if window is not None else None)
    if code is not None:
        discounts.record_redemption(session, clock=clock, discount_id=code.id,
                                    customer_id=customer.id, order_id=order.id,
                                    discount_amount=totals.discount_amount,
                                    delivery_discount_amount=saved)
    if window is not None:
        assert policy is not None
        for line in drafted:  # variant order: one lock order with the cart checkout
            if not take_stock(session, location_id=window.location_id,
                              variant_id=line.variant.id, quantity=line.quantity):
                raise OutOfStock(f"the window's hub has not {line.quantity} "
                                 f"{line.variant.sku} left; pick another window or none",
                                 sku=line.variant.sku)
        policy.book_window(session, clock=clock, quote=window, order_id=order.id,
                           customer_id=customer.id)
    return order


def _pay(db: Database, *, clock: Clock, provider: PaymentProvider, order: Order,
         payment: Any, card: CardToken, policy: CheckoutPolicy | None = None) -> int:
    return orders.pay_order(
        db, clock=clock, provider=provider, order=order, payment=payment, card=card,
        on_payment_failed=lambda session, failed: _return_order(session, clock, failed,
                                                                policy))


def _return_order(session: Session, clock: Clock, order: Order,
                  policy: CheckoutPolicy | None) -> None:
    """A declined card: the code's use (if any), the window's place and the hub's units (if
    one was booked) and the drop's units go back."""
    discounts.release(session, order_id=order.id)
    if order.fulfilment_path == "hub-window" and policy is not None:
        policy.cancel_window(session, clock=clock, order_id=order.id)
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                    .order_by(OrderLine.variant_id)):
            return_stock(session, location_id=order.location_id or 0,
                         variant_id=line.variant_id, quantity=line.quantity)
    service.return_units_of_order(session, clock=clock, order=order)


def _resume(db: Database, checkout_reference: str) -> tuple[Order, Any]:
    """A concurrent attempt with the same reference wrote its order first (the unique
    reference refused ours, and our transaction, units included, rolled back): carry on with
    that order, as a retry would."""
    def find(session: Session) -> tuple[Order, Any]:
        order = find_by_checkout_reference(session, checkout_reference)
        if order is None:
            raise InvalidState("this checkout clashed with another; retry it")
        return order, latest_payment(session, order.id)

    return in_transaction(db, find)


def checkout_hold(
    db: Database, *, clock: Clock, settings: Settings, provider: PaymentProvider,
    customer_id: int, hold_id: int, card: CardToken, shipping_address: dict[str, Any],
    checkout_reference: str, early_access: service.EarlyAccess = service.membership_early_access,
    discount_code: str = "", delivery: DeliveryChoice | None = None,
    policy: CheckoutPolicy | None = None,
) -> int:
    """Pays for a hold; returns the paid order's id. A retry with the same reference resumes
    (finds the order, charges with the same payment key); a declined card returns the units.
    A waitlist offer is a hold the shopper did not take themselves: it is paid for only once
    the drop is open to them (early access), as a purchase of theirs would be."""
    def write(session: Session) -> tuple[Order, Any]:
        order = find_by_checkout_reference(session, checkout_reference)
        if order is None:
            offer = service.get_hold(session, hold_id, customer_id=customer_id)
            if offer.source is HoldSource.offer:
                service.ensure_open(session, clock=clock,
                                    drop=service.get_drop(session, offer.drop_id),
                                    customer_id=customer_id, early_access=early_access)
            hold = service.convert_hold(session, clock=clock, hold_id=hold_id,
                                        customer_id=customer_id)
            order = _order_from_hold(session, clock=clock, settings=settings, hold=hold,
                                     card=card, shipping_address=shipping_address,
                                     checkout_reference=checkout_reference,
                                     discount_code=discount_code, delivery=delivery,
                                     policy=policy)
        return order, latest_payment(session, order.id)

    try:
        order, payment = in_transaction(db, write)
    except IntegrityError:
        order, payment = _resume(db, checkout_reference)
    return _pay(db, clock=clock, provider=provider, order=order, payment=payment, card=card,
                policy=policy)


def purchase(
    db: Database, *, clock: Clock, settings: Settings, provider: PaymentProvider, drop_id: int,
    shopper: Shopper, lines: Sequence[service.HoldLine], admission_token: str | None,
    card: CardToken, shipping_address: dict[str, Any], checkout_reference: str,
    early_access: service.EarlyAccess = service.membership_early_access,
    rng: random.Random | None = None, discount_code: str = "",
    delivery: DeliveryChoice | None = None, policy: CheckoutPolicy | None = None,
) -> int:
    """Admission, units, order and payment in one request, the take-and-write one commit:
    the person counted, the order written, and only then the units taken (recorded as a hold
    already converted to the order), so a slot row is locked only for the take, the hold's
    INSERT and the commit."""
    def write(session: Session) -> tuple[Order, Any]:
        order = find_by_checkout_reference(session, checkout_reference)
        if order is None:
            drop = service.get_drop(session, drop_id)
            source = _admit(session, clock=clock, settings=settings, drop=drop,
                            shopper=shopper, admission_token=admission_token,
                            early_access=early_access)
            pools = service.count_purchase(session, clock=clock, drop=drop,
                                           customer_id=shopper.customer_id, lines=lines)
            order = _write_order(
                session, clock=clock, settings=settings, customer_id=shopper.customer_id,
                drop=drop, lines=[(line.variant_id, line.quantity)
                                  for line in sorted(lines, key=lambda item: item.variant_id)],
                card=card, shipping_address=shipping_address,
                checkout_reference=checkout_reference, discount_code=discount_code,
                delivery=delivery, policy=policy)
            payment = latest_payment(session, order.id)
            service.take_purchase_units(session, clock=clock, drop=drop,
                                        customer_id=shopper.customer_id, lines=lines,
                                        pools=pools, source=source, order_id=order.id, rng=rng)
            return order, payment
        return order, latest_payment(session, order.id)

    try:
        order, payment = _with_reclaim(db, clock=clock, drop_id=drop_id, work=write,
                                       early_access=early_access)
    except IntegrityError:
        order, payment = _resume(db, checkout_reference)
    return _pay(db, clock=clock, provider=provider, order=order, payment=payment, card=card,
                policy=policy)


def release_hold(db: Database, *, clock: Clock, customer_id: int, hold_id: int,
                 early_access: service.EarlyAccess = service.membership_early_access) -> None:
    in_transaction(db, lambda session: service.release_hold(
        session, clock=clock, hold_id=hold_id, customer_id=customer_id,
        early_access=early_access))
