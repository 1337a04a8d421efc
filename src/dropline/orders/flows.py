"""Checkout and refund: orchestration with a side effect (the card charge) in the middle.

The charge is never made inside a database transaction: the order is written first (stock
taken, status ``pending-payment``), committed, then charged with the payment's own idempotency
key, then settled. A crash at any point leaves a state a retry resumes from:

    crash before commit 1   -> nothing happened; the retry starts afresh
    crash after commit 1    -> the retry finds the order by its checkout reference and charges
                               with the same provider key (the provider never charges twice)
    crash after the charge  -> the same: the provider replays its outcome, the order settles

So a paid order exists exactly once per checkout attempt and no payment lacks its order. The
charge and the settle of the payment are ``payments.charging``'s, shared with memberships.

Both halves are shared by every way of buying: ``write_pending_order`` writes the order once the
caller has taken the units (from stock rows for a cart, from a hold for a drop, see
``drops.flows``), and ``pay_order`` charges and settles, handing a failed payment back to the
caller's hook so the units return to where they came from.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropline.carts.models import Cart, CartStatus
from dropline.carts.service import load_cart, view_cart
from dropline.catalog.models import Product, ProductFamily, ProductStatus, Variant
from dropline.catalog.service import (
    available_stock,
    get_location_by_code,
    return_stock,
    take_stock,
)
from dropline.clock import Clock
from dropline.config import Settings
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.discounts import service as discounts
from dropline.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    InvalidState,
    NotFound,
    OutOfStock,
    PaymentDeclined,
    PaymentRequiresAction,
    ServiceUnavailable,
)
from dropline.events.service import record_event
from dropline.orders import lifecycle, shipments
from dropline.orders.carriers import Carrier, ParcelRequest
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.policy import CheckoutPolicy, CreditNoteIssuer, DeliveryChoice
from dropline.orders.quote import CheckoutQuote, quote_checkout
from dropline.orders.rules import OrderStage
from dropline.orders.service import (
    find_by_checkout_reference,
    get_order,
    open_refund,
    order_payload,
)
from dropline.payments.charging import (
    charge_with_retries,
    latest_payment,
    note_awaiting_payment,
    settle_payment,
    settle_refund,
)
from dropline.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from dropline.payments.provider import CardToken, ChargeResult, PaymentProvider
from dropline.pricing import Totals
from dropline.tax import service as tax_service
from dropline.tax.ports import VatNumberChecker
from dropline.tax.rules import LineTax, TaxBreakdown

# Gives an order's units back when its payment fails, inside the settling transaction.
PaymentFailedHook = Callable[[Session, Order], None]


@dataclass(frozen=True)
class CheckoutRequest:
    customer_id: int
    cart_id: str
    card: CardToken
    shipping_address: dict[str, Any]
    checkout_reference: str  # stable per attempt (derived from the Idempotency-Key)
    delivery: DeliveryChoice | None = None  # None: central shipping
    discount_code: str = ""  # a discount code the shopper typed, or none
    vat_number: str = ""  # a business buyer's VAT number (reverse charge), or none


@dataclass(frozen=True)
class DraftLine:
    """One line of an order about to be written, whatever it was bought from (a cart, a hold)."""

    variant: Variant
    product: Product
    family: ProductFamily
    unit_price_amount: int
    quantity: int
    discount_amount: int = 0  # a discount code's part of the whole line

    @property
    def line_total_amount(self) -> int:
        return self.unit_price_amount * self.quantity


def draft_lines(session: Session, quantities: list[tuple[int, int | None, int]],
                discounts: Mapping[int, int] | None = None) -> list[DraftLine]:
    """(variant_id, unit_price_amount or None for the variant's price, quantity) -> lines
    sorted by variant id, each variant checked to be still for sale; ``discounts`` gives a
    discount code's part of a variant's line."""
    rows = {
        variant.id: (variant, product, family)
        for variant, product, family in session.execute(
            select(Variant, Product, ProductFamily)
            .join(Product, Product.id == Variant.product_id)
            .join(ProductFamily, ProductFamily.id == Product.family_id)
            .where(Variant.id.in_([variant_id for variant_id, _, _ in quantities]))
        )
    }
    lines = []
    for variant_id, unit_price, quantity in sorted(quantities, key=lambda item: item[0]):
        variant, product, family = rows[variant_id]
        if not variant.active or product.status is not ProductStatus.active:
            raise OutOfStock(f"{variant.sku} is no longer for sale", sku=variant.sku)
        price = variant.price_amount if unit_price is None else unit_price
        lines.append(DraftLine(variant, product, family, price, quantity,
                               (discounts or {}).get(variant_id, 0)))
    return lines


def write_pending_order(
    session: Session, *, clock: Clock, customer: Customer, lines: list[DraftLine],
    totals: Totals, checkout_reference: str, card: CardToken, shipping_address: dict[str, Any],
    location_id: int | None, cart_id: str | None = None, fulfilment_path: str = "central",
    extra_payload: dict[str, Any] | None = None, discount_code: str | None = None,
    tax: TaxBreakdown | None = None, line_taxes: Mapping[int, LineTax] | None = None,
    vat_number: str = "",
) -> Order:
    """Writes an order awaiting payment, its lines and its payment (with the payment's own
    idempotency key), and records ``order.created``. The caller has already taken the units,
    in the same transaction, from wherever they come from (stock rows, a drop hold). ``tax``
    (the quote's VAT; ``line_taxes`` its lines by variant id) is written with the rows, so the
    audit trail records one creation, not a creation and a correction."""
    now = clock.now()
    order = Order(
        customer_id=customer.id, email=customer.email, status=OrderStatus.pending_payment,
        currency=totals.currency, subtotal_amount=totals.subtotal_amount,
        discount_amount=totals.discount_amount, shipping_amount=totals.shipping_amount,
        tax_added_amount=totals.tax_added_amount, total_amount=totals.total_amount,
        refunded_amount=0,
        checkout_reference=checkout_reference, cart_id=cart_id, location_id=location_id,
        discount_code=discount_code,
        fulfilment_path=fulfilment_path, acquisition_source=customer.acquisition_source,
        acquisition_campaign=customer.acquisition_campaign,
        shipping_address=shipping_address, created_at=now,
    )
    line_tax = line_taxes or {}
    if tax is not None:
        order.tax_amount, order.tax_added_amount = tax.tax_amount, tax.added_amount
        order.shipping_tax_amount = tax.shipping.tax_amount
        order.shipping_tax_rate_bp = tax.shipping.rate_bp
        order.tax_country, order.reverse_charge = tax.country, tax.reverse_charge
        order.vat_number = "".join(vat_number.split()).upper()[:20] \
            if tax.reverse_charge or vat_number.strip() else ""
    session.add(order)
    session.flush()
    session.add_all([OrderLine(
        order_id=order.id, variant_id=line.variant.id, sku=line.variant.sku,
        product_name=line.product.name, variant_name=line.variant.name,
        product_family=line.family.slug, condition_grade=line.variant.condition_grade,
        condition_disclosure=line.variant.condition_disclosure,
        unit_price_amount=line.unit_price_amount, quantity=line.quantity,
        line_total_amount=line.line_total_amount, discount_amount=line.discount_amount,
        **_line_tax(line_tax.get(line.variant.id)),
    ) for line in lines])
    session.add(Payment(
        order_id=order.id, provider="pending", idempotency_key=f"pay_{uuid.uuid4().hex}",
        status=PaymentStatus.pending, amount=order.total_amount, currency=order.currency,
        card_last4=card.last4, card_fingerprint=card.fingerprint,
        created_at=now, updated_at=now,
    ))
    session.flush()
    record_event(session, clock=clock, type="order.created", subject_type="order",
                 subject_id=order.id, customer_id=customer.id,
                 payload={**order_payload(session, order, (line.family.slug for line in lines)),
                          **(extra_payload or {})})
    return order


def create_pending_order(session: Session, *, clock: Clock, settings: Settings,
                          policy: CheckoutPolicy, request: CheckoutRequest,
                          vat_checker: VatNumberChecker = tax_service.OFFLINE) -> Order:
    """The first half of a cart checkout, in the caller's transaction: the cart priced by
    ``quote_checkout``, the discount code's use, the stock and the window taken, the order
    written awaiting payment (``checkout`` then charges it)."""
    customer = session.get(Customer, request.customer_id)
    if customer is None:
        raise NotFound("customer not found")
    cart = load_cart(session, cart_id=request.cart_id, customer_id=customer.id)
    if cart.status is not CartStatus.open:
        raise InvalidState("this cart has already been checked out")
    view = view_cart(session, cart=cart, flat_shipping=settings.shop.flat_shipping_amount,
                     free_shipping_threshold=settings.shop.free_shipping_threshold)
    if view.totals is None:
        raise InvalidInput("the cart is empty; add something before checking out")
    # Priced where the pages price it (member prices, the discount code, delivery), decided
    # here on the server, not in the page; a picked window must still take the order.
    quote = quote_checkout(session, clock=clock, settings=settings, policy=policy,
                           customer_id=customer.id, view=view, delivery=request.delivery,
                           postcode=str(request.shipping_address.get("postcode", "")),
                           discount_code=request.discount_code, strict=True,
                           country=str(request.shipping_address.get("country") or ""),
                           vat_number=request.vat_number, vat_checker=vat_checker)
    if quote.discount_id is not None:
        # The code's use is taken first, by one conditional UPDATE in this transaction: a code
        # used up refuses the checkout before any stock is touched, and a rollback (no stock,
        # a full window) gives the use back with everything else.
        discounts.take_use(session, discount_id=quote.discount_id, customer_id=customer.id)
    discounted = {line.variant_id: line.discount_amount for line in quote.lines}
    lines = draft_lines(session, [(line.variant_id, line.unit_price_amount, line.quantity)
                                  for line in quote.lines], discounts=discounted)
    location_id = (quote.window.location_id if quote.window is not None else
                   get_location_by_code(session, settings.shop.default_location_code).id)
    # Lines are sorted by variant id, so concurrent checkouts take stock rows in one order
    # (no deadlocks on PostgreSQL); each take is one conditional UPDATE.
    for line in lines:
        if not take_stock(session, location_id=location_id, variant_id=line.variant.id,
                          quantity=line.quantity):
            elsewhere = available_stock(session, [line.variant.id])[line.variant.id]
            hint = ("; it can still come from a micro-hub: pick a delivery window from "
                    "GET /api/v1/delivery-options" if quote.window is None
                    and elsewhere >= line.quantity else "")
            raise OutOfStock(f"not enough {line.variant.sku} left for {line.quantity}{hint}",
                             sku=line.variant.sku)
    totals = Totals(cart.currency, quote.subtotal_amount, quote.discount_amount,
                    quote.shipping_amount, quote.tax_added_amount)
    order = write_pending_order(
        session, clock=clock, customer=customer, lines=lines, totals=totals,
        checkout_reference=request.checkout_reference, card=request.card,
        shipping_address=request.shipping_address, location_id=location_id,
        cart_id=cart.id, fulfilment_path="hub-window" if quote.window else "central",
        discount_code=quote.discount_code, tax=quote.tax, vat_number=request.vat_number,
        line_taxes={line.variant_id: tax for line, tax in zip(
            quote.lines, quote.tax.lines, strict=True)} if quote.tax else None,
        extra_payload={"delivery_subsidised": bool(quote.window and quote.window.subsidised),
                       "window_id": quote.window_id,
                       "discount_code": quote.discount_code,
                       "discount_amount": quote.discount_amount})
    if quote.discount_id is not None:
        discounts.record_redemption(
            session, clock=clock, discount_id=quote.discount_id, customer_id=customer.id,
            order_id=order.id, discount_amount=quote.discount_amount,
            delivery_discount_amount=quote.delivery_discount_amount)
    if quote.window is not None:
        # The window's capacity is taken in this same transaction: a full window rolls the
        # whole order back (409), so no order exists without its place in the van.
        policy.book_window(session, clock=clock, quote=quote.window, order_id=order.id,
                           customer_id=customer.id)
    cart.status = CartStatus.checked_out
    session.flush()
    return order


def taxed(session: Session, *, settings: Settings, at: datetime, lines: list[DraftLine],
          totals: Totals, country: str) -> tuple[Totals, TaxBreakdown, dict[int, LineTax]]:
    """VAT for an order priced outside the cart's quote (a drop purchase, a counter sale),
    by the checkout's rules (``tax.rules``): the totals with any tax added on top, the
    breakdown, and each line's tax by variant id, as ``write_pending_order`` takes them."""
    vat = tax_service.tax_for(
        session, lines=[(line.product.id, line.line_total_amount - line.discount_amount)
                        for line in lines],
        shipping_amount=totals.shipping_amount, country=country or settings.shop.country,
        at=at, prices_include_tax=settings.shop.prices_include_tax,
        shop_country=settings.shop.country)
    return (replace(totals, tax_added_amount=vat.added_amount), vat,
            {line.variant.id: line_vat for line, line_vat in zip(lines, vat.lines, strict=True)})


def _line_tax(tax: LineTax | None) -> dict[str, Any]:
    """An order line's VAT columns from its line of the quote's breakdown."""
    if tax is None:
        return {}
    return {"tax_class": tax.tax_class.value, "tax_rate_bp": tax.rate_bp,
            "tax_amount": tax.tax_amount}


def return_cart_stock(session: Session, order: Order, *, clock: Clock) -> None:
    """A cart order whose payment failed gives its units back to the stock rows, and the
    shopper may try another card with the same basket (and a new Idempotency-Key). A hub-window
    order's place in its window is given back first, by ``release_cart_order``."""
    for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                                .order_by(OrderLine.variant_id)):
        return_stock(session, location_id=order.location_id or 0,
                     variant_id=line.variant_id, quantity=line.quantity)
    session.execute(update(Cart).where(Cart.id == order.cart_id).values(status=CartStatus.open))


def release_cart_order(session: Session, order: Order, *, clock: Clock,
                       policy: CheckoutPolicy) -> None:
    """The checkout's hook for a failed payment: the order's place in its delivery window (if
    any), its use of a discount code, then its units and its cart, go back."""
    discounts.release(session, order_id=order.id)
    if order.fulfilment_path == "hub-window":
        policy.cancel_window(session, clock=clock, order_id=order.id)
    return_cart_stock(session, order, clock=clock)


def settle_order(session: Session, *, clock: Clock, order_id: int, payment_id: int,
                 provider_name: str, result: ChargeResult,
                 on_payment_failed: PaymentFailedHook) -> tuple[Order, bool]:
    """Records the provider's answer on the order's pending payment and moves the order to
    paid or payment-failed (``on_payment_failed`` gives its units back); returns the order and
    whether this call settled it (False: another settler had, and nothing changed)."""
    order = session.get(Order, order_id)
    assert order is not None
    now = clock.now()
    # Only the first settler moves the payment out of pending; a concurrent resumer no-ops.
    status = settle_payment(session, at=now, payment_id=payment_id,
                            provider_name=provider_name, result=result)
    if status is None:
        session.refresh(order)
        return order, False
    if status is PaymentStatus.succeeded:
        order.status = OrderStatus.paid
        order.paid_at = now
        event = "order.paid"
    else:
        order.status = OrderStatus.payment_failed
        on_payment_failed(session, order)
        event = "order.payment_failed"
    session.flush()
    record_event(session, clock=clock, type=event, subject_type="order", subject_id=order.id,
                 customer_id=order.customer_id,
                 payload={**order_payload(session, order), "decline_code": result.decline_code})
    return order, True


def settle_reported_payment(session: Session, *, clock: Clock, payment: Payment,
                            provider_name: str, result: ChargeResult,
                            on_payment_failed: PaymentFailedHook) -> Order:
    """Settles a payment the provider decided after the checkout's request ended (3-D Secure
    completed in the page, a bank's later answer), as ``pay_order`` settles its own: only a
    payment still pending moves, so a report repeated or out of order changes nothing."""
    order, _ = settle_order(session, clock=clock, order_id=payment.order_id,
                            payment_id=payment.id, provider_name=provider_name, result=result,
                            on_payment_failed=on_payment_failed)
    return order


def checkout(
    db: Database, *, clock: Clock, settings: Settings, provider: PaymentProvider,
    policy: CheckoutPolicy, request: CheckoutRequest,
    vat_checker: VatNumberChecker = tax_service.OFFLINE,
) -> int:
    """Returns the order id once it is paid; raises PaymentDeclined (order kept, stock
    returned) or OutOfStock / InvalidInput (nothing written). ``policy`` answers for member
    prices and delivery windows (``services.checkout``)."""
    with db.transaction() as session:
        order = find_by_checkout_reference(session, request.checkout_reference)
        if order is None:
            order = create_pending_order(session, clock=clock, settings=settings,
                                          policy=policy, request=request,
                                          vat_checker=vat_checker)
        payment = latest_payment(session, order.id)
    return pay_order(db, clock=clock, provider=provider, order=order, payment=payment,
                     card=request.card,
                     on_payment_failed=functools.partial(release_cart_order, clock=clock,
                                                         policy=policy))


def pay_order(
    db: Database, *, clock: Clock, provider: PaymentProvider, order: Order, payment: Payment,
    card: CardToken, on_payment_failed: PaymentFailedHook,
) -> int:
    """The second half of every checkout (cart or drop hold), on an order written and
    committed by the first: charge outside any transaction with the payment's own idempotency
    key, then settle. ``on_payment_failed`` gives the units back to where they were taken from,
    in the settling transaction. Returns the order id once paid; raises PaymentDeclined."""
    order_id, status = order.id, order.status
    if status is OrderStatus.pending_payment:
        result = charge_with_retries(functools.partial(
            provider.charge, amount=payment.amount, currency=payment.currency, card=card,
            idempotency_key=payment.idempotency_key))
        if result is None:
            raise ServiceUnavailable(
                "the payment provider is not answering; nothing was charged twice. Retry with "
                "the same Idempotency-Key", retry_after=5)
        if result.status == "requires_action":
            with db.transaction() as session:
                note_awaiting_payment(session, at=clock.now(), payment_id=payment.id,
                                      provider_name=provider.name, reference=result.reference)
            raise PaymentRequiresAction(
                "your bank asks you to confirm this payment; nothing is charged until you do",
                order_id=order_id, client_secret=result.client_secret)
        with db.transaction() as session:
            settled, _ = settle_order(session, clock=clock, order_id=order_id,
                                      payment_id=payment.id, provider_name=provider.name,
                                      result=result, on_payment_failed=on_payment_failed)
            status = settled.status
    if status is OrderStatus.payment_failed:
        with db.transaction() as session:
            decline = session.scalar(select(Payment.decline_code).where(
                Payment.order_id == order_id).order_by(Payment.id.desc()))
        raise PaymentDeclined(f"the card was declined ({decline}); nothing was charged",
                              decline_code=decline, order_id=order_id)
    return order_id


def refund_order(
    db: Database, *, clock: Clock, provider: PaymentProvider, credit_notes: CreditNoteIssuer,
    order_id: int, amount: int, reason: str, actor: str, idempotency_key: str,
) -> int:
    """Refunds part or all of a paid order; returns the refund id. The refunded total can never
    exceed the order total (``service.open_refund``). As with checkout, the provider is called
    between two transactions, so a retry with the same key resumes a refund that crashed
    half-way and never pays out twice (nor issues a second credit note)."""
    with db.transaction() as session:
        refund = session.scalar(select(Refund).where(Refund.idempotency_key == idempotency_key))
        if refund is None:
            refund = open_refund(session, clock=clock, order_id=order_id, amount=amount,
                                 reason=reason, actor=actor, idempotency_key=idempotency_key)
        elif refund.order_id != order_id or refund.amount != amount:
            raise IdempotencyKeyReused("this key was used for a different refund")
        refund_id = refund.id
    pay_out_refund(db, clock=clock, provider=provider, credit_notes=credit_notes,
                   refund_id=refund_id)
    return refund_id


def pay_out_refund(db: Database, *, clock: Clock, provider: PaymentProvider,
                   credit_notes: CreditNoteIssuer, refund_id: int) -> None:
    """The second half of every refund, on a refund opened and committed by the first: the
    provider is asked with the refund's own key (it never pays out twice), then the refund is
    settled, and ``order.refunded`` recorded and the credit note issued, by the first settler
    only, in the settling transaction. A refund already settled is left alone."""
    with db.transaction() as session:
        refund = session.get(Refund, refund_id)
        assert refund is not None
        if refund.status is not RefundStatus.pending:
            return
        payment = session.get(Payment, refund.payment_id)
        assert payment is not None and payment.provider_ref is not None
        order_id, amount, currency = refund.order_id, refund.amount, refund.currency
        reason, actor, key = refund.reason, refund.actor, refund.idempotency_key
        charge_ref = payment.provider_ref
    reference = provider.refund(charge_reference=charge_ref, amount=amount, currency=currency,
                                idempotency_key=f"refund_{key}")
    with db.transaction() as session:
        if settle_refund(session, refund_id=refund_id, reference=reference):
            order = session.get(Order, order_id)
            assert order is not None
            record_event(session, clock=clock, type="order.refunded", subject_type="order",
                         subject_id=order.id, customer_id=order.customer_id,
                         payload={**order_payload(session, order), "refund_id": refund_id,
                                  "refund_amount": amount,
                                  "refunded_amount": order.refunded_amount,
                                  "reason": reason, "actor": actor})
            credit_notes(session, clock=clock, refund_id=refund_id)


@dataclass(frozen=True)
class Cancellation:
    order_id: int
    refund_id: int | None  # None when nothing was left to refund
    refund_amount: int


def cancel_order(
    db: Database, *, clock: Clock, provider: PaymentProvider, policy: CheckoutPolicy,
    credit_notes: CreditNoteIssuer, order_id: int, reason: str, actor: str,
    lines: Mapping[int, int] | None = None,
    idempotency_key: str | None = None,
) -> Cancellation:
    """Cancels a paid order before packing, whole (``lines`` None) or some units of some lines
    (order line id -> units): the units go back to stock and the money back to the card.

    The stage move, the stock, the window and the opened refund commit together; the provider
    is asked after commit (``pay_out_refund``). A whole cancellation's refund key is fixed per
    order (``cancel-<order id>``), so even a second cancellation that got past the stage move
    could not refund twice; of two concurrent ones, the stage move lets one through and the
    other gets 409 with the current stage. A partial one's key comes from the caller's
    Idempotency-Key."""
    with db.transaction() as session:
        order = get_order(session, order_id)
        if lines is None:
            amount = lifecycle.cancel_whole(session, clock=clock, policy=policy, order=order,
                                            reason=reason)
        else:
            amount = lifecycle.cancel_lines(session, clock=clock, policy=policy, order=order,
                                            quantities=lines, reason=reason)
        whole = order.stage is OrderStage.cancelled
        key = (f"cancel-{order_id}" if whole
               else f"cancel-{order_id}-{idempotency_key or uuid.uuid4().hex}")
        refund_id = None
        if amount > 0:
            refund_id = open_refund(session, clock=clock, order_id=order_id, amount=amount,
                                    reason=reason or "cancelled", actor=actor,
                                    idempotency_key=key).id
    if refund_id is not None:
        pay_out_refund(db, clock=clock, provider=provider, credit_notes=credit_notes,
                       refund_id=refund_id)
    return Cancellation(order_id, refund_id, amount)


def ship_order(
    db: Database, *, clock: Clock, carriers: Mapping[str, Carrier], order_id: int,
    carrier: str, tracking_number: str | None = None, service: str = "",
    shipment_id: int | None = None,
) -> int:
    """Ships one parcel of a packed order (its only one unless ``shipment_id`` names it):
    the carrier books it outside any transaction, with a reference stable per shipment, then
    its tracking is recorded and, with the order's last parcel, the order moves to shipped.
    Returns the shipment id."""
    if carrier not in carriers:
        raise InvalidInput(f"unknown carrier {carrier!r}; one of {', '.join(sorted(carriers))}",
                           field="carrier")
    with db.transaction() as session:
        order = get_order(session, order_id)
        shipment = shipments.shipment_of(session, order=order, shipment_id=shipment_id)
        shipments.check_shippable(order, shipment)
        view = next(v for v in shipments.order_shipments(session, order.id)
                    if v.shipment.id == shipment.id)
        parcel = ParcelRequest(
            shipment_id=shipment.id, order_id=order.id,
            reference=f"dropline-shipment-{shipment.id}", ship_to=dict(order.shipping_address),
            ship_from_location=view.location_code, items=view.units, service=service,
            tracking_number=tracking_number)
    booking = carriers[carrier].book(parcel)
    with db.transaction() as session:
        order = get_order(session, order_id)
        shipment = shipments.shipment_of(session, order=order, shipment_id=parcel.shipment_id)
        shipments.record_shipping(session, clock=clock, order=order, shipment=shipment,
                                  carrier=carrier, booking=booking)
    return parcel.shipment_id
