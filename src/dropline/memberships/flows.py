"""Charging for memberships: sign-up, paid tier changes and renewals (with dunning).

As in checkout, a card is never charged inside a database transaction. Each charge attempt is

    1. claimed   one conditional UPDATE (attempt_open false -> true, attempts + 1; or the lease
                 of a crashed attempt has run out) and committed: only one worker wins
    2. charged   through the provider (``payments.charging.charge_with_retries``) with the
                 key ``<charge key>:<attempt>``; the charge key is derived from the membership
                 and the period, so the same attempt sent twice (a crash, a retry) is answered
                 from the provider's memory, never charged again
    3. settled   one conditional UPDATE closes the attempt; only its claimer's settle applies

so a renewal is paid at most once whatever runs it, however often, on however many workers.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropline.catalog.models import Product, ProductFamily, Variant
from dropline.catalog.service import get_location_by_code, take_stock
from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.errors import (
    AlreadyExists,
    NotFound,
    PaymentDeclined,
    RequestInFlight,
    ServiceUnavailable,
)
from dropline.events.service import record_event
from dropline.failpoints import AFTER_RENEWAL_CHARGE, stop_at
from dropline.memberships import service
from dropline.memberships.config import MembershipConfig
from dropline.memberships.mix_rules import choose_mix
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipPaymentMethod,
    MembershipTier,
)
from dropline.memberships.rules import EndReason, MembershipStatus, OutOfStockPolicy
from dropline.locations.models import StockLevel
from dropline.money import format_money
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import order_event_payload
from dropline.payments.charging import charge_with_retries
from dropline.payments.provider import (
    CardRefused,
    CardToken,
    ChargeResult,
    PaymentProvider,
    ProviderUnavailable,
    RecurringPaymentProvider,
)

Outcome = Literal["succeeded", "declined", "busy", "unavailable", "settled"]


@dataclass(frozen=True)
class SubscribeRequest:
    customer_id: int
    tier_id: int
    card: CardToken
    signup_reference: str  # stable per attempt (from the Idempotency-Key or the form's key)
    shipping_address: dict[str, Any] | None = None


def _save_card(db: Database, *, clock: Clock, provider: RecurringPaymentProvider,
               customer_id: int, card: CardToken) -> int:
    try:
        saved = provider.save_card(card=card)
    except CardRefused as exc:
        raise PaymentDeclined(f"the card was refused ({exc.decline_code})",
                              decline_code=exc.decline_code) from None
    except ProviderUnavailable:
        raise ServiceUnavailable("the payment provider is not answering; try again",
                                 retry_after=5) from None
    with db.transaction() as session:
        return service.save_payment_method(
            session, clock=clock, customer_id=customer_id, provider=provider.name,
            token=saved.token, last4=saved.last4, fingerprint=saved.fingerprint).id


def subscribe(db: Database, *, clock: Clock, config: MembershipConfig,
              provider: RecurringPaymentProvider, request: SubscribeRequest) -> int:
    """Returns the membership id once it is trialing or paid. A declined first payment leaves
    a ``failed`` membership (spot released) and raises PaymentDeclined. Retried with the same
    ``signup_reference`` it resumes where a crash left it."""
    with db.transaction() as session:
        existing = session.scalar(select(Membership).where(
            Membership.signup_reference == request.signup_reference))
        if existing is None:
            # Refuse what would be refused anyway before the card is touched.
            service.get_tier(session, request.tier_id)
            if service.live_membership(session, customer_id=request.customer_id) is not None:
                raise AlreadyExists("you are already a member; change your tier instead")
    if existing is None:
        method_id = _save_card(db, clock=clock, provider=provider,
                               customer_id=request.customer_id, card=request.card)
        with db.transaction() as session:
            tier = service.get_tier(session, request.tier_id)
            membership, _ = service.start_membership(
                session, clock=clock, customer_id=request.customer_id, tier=tier,
                payment_method_id=method_id, signup_reference=request.signup_reference,
                shipping_address=request.shipping_address)
            membership_id = membership.id
    else:
        membership_id = existing.id
    _collect_customer_present(db, clock=clock, config=config, provider=provider,
                              membership_id=membership_id, kind=ChargeKind.signup)
    return membership_id


def change_tier(db: Database, *, clock: Clock, config: MembershipConfig,
                provider: RecurringPaymentProvider, customer_id: int, new_tier_id: int) -> int:
    """Upgrade or downgrade now, prorated. Returns the membership id. A positive net is
    charged to the saved card before the tier switches; a declined card changes nothing."""
    with db.transaction() as session:
        plan = service.plan_change(session, clock=clock, customer_id=customer_id,
                                   new_tier_id=new_tier_id)
        service.begin_change(session, clock=clock, plan=plan)
        membership_id = plan.membership.id
    _collect_customer_present(db, clock=clock, config=config, provider=provider,
                              membership_id=membership_id, kind=ChargeKind.change)
    return membership_id


def update_payment_method(db: Database, *, clock: Clock, config: MembershipConfig,
                          provider: RecurringPaymentProvider, customer_id: int,
                          card: CardToken) -> int:
    """Saves a new card for the live membership; a renewal in dunning is retried on it now."""
    with db.transaction() as session:
        membership_id = service.require_live(session, customer_id=customer_id).id
    method_id = _save_card(db, clock=clock, provider=provider, customer_id=customer_id, card=card)
    with db.transaction() as session:
        membership = service.get_membership(session, membership_id)
        membership.payment_method_id = method_id
        membership.updated_at = clock.now()
        # A renewal between retries becomes due now (not one whose attempt is in flight).
        due = session.scalars(select(MembershipCharge.id).where(
            MembershipCharge.membership_id == membership_id,
            MembershipCharge.kind == ChargeKind.renewal,
            MembershipCharge.status == ChargeStatus.pending,
            MembershipCharge.attempt_open.is_(False))).all()
        session.execute(update(MembershipCharge).where(MembershipCharge.id.in_(due))
                        .values(next_attempt_at=clock.now()))
    for charge_id in due:
        attempt_charge(db, clock=clock, config=config, provider=provider, charge_id=charge_id)
    return membership_id


def _collect_customer_present(db: Database, *, clock: Clock, config: MembershipConfig,
                              provider: RecurringPaymentProvider, membership_id: int,
                              kind: ChargeKind) -> None:
    with db.transaction() as session:
        charge = session.scalar(select(MembershipCharge).where(
            MembershipCharge.membership_id == membership_id, MembershipCharge.kind == kind)
            .order_by(MembershipCharge.id.desc()).limit(1))
    if charge is None or charge.status is ChargeStatus.succeeded:
        return
    outcome = charge.status.value
    if charge.status is ChargeStatus.pending:
        outcome = attempt_charge(db, clock=clock, config=config, provider=provider,
                                 charge_id=charge.id)
    if outcome == "busy":
        raise RequestInFlight("this payment is being taken right now; retry in a few seconds",
                              retry_after=2)
    if outcome == "unavailable":
        raise ServiceUnavailable("the payment provider is not answering; nothing was charged "
                                 "twice. Retry with the same key", retry_after=5)
    with db.transaction() as session:
        charge = session.get(MembershipCharge, charge.id)
        assert charge is not None
        if charge.status is ChargeStatus.failed:
            raise PaymentDeclined(f"the card was declined ({charge.decline_code}); nothing was "
                                  "charged", decline_code=charge.decline_code)


# -------------------------------------------------------------------- one charge attempt


def attempt_charge(db: Database, *, clock: Clock, config: MembershipConfig,
                   provider: RecurringPaymentProvider, charge_id: int,
                   failpoint: str | None = None) -> Outcome:
    """Claim, charge, settle one attempt of one charge (see the module docstring). A charge
    held for the member's authentication is first withdrawn at the provider
    (``withdraw_held``), so the new attempt and the member's confirmation cannot both pay.
    ``failpoint``: the crash tests' setting (``dropline.failpoints``)."""
    held = withdraw_held(db, clock=clock, config=config, provider=provider, charge_id=charge_id)
    if held is not None:
        return held
    now = clock.now()
    lease = now + timedelta(seconds=config.charge_lease_seconds)
    with db.transaction() as session:
        claimed = session.execute(
            update(MembershipCharge)
            .where(MembershipCharge.id == charge_id,
                   MembershipCharge.status == ChargeStatus.pending,
                   MembershipCharge.attempt_open.is_(False),
                   MembershipCharge.next_attempt_at <= now)
            .values(attempts=MembershipCharge.attempts + 1, attempt_open=True, lease_until=lease)
        ).rowcount
        if claimed != 1:  # resume an attempt whose claimer crashed: same attempt, same key
            claimed = session.execute(
                update(MembershipCharge)
                .where(MembershipCharge.id == charge_id,
                       MembershipCharge.status == ChargeStatus.pending,
                       MembershipCharge.attempt_open.is_(True),
                       MembershipCharge.lease_until <= now)
                .values(lease_until=lease)
            ).rowcount
        if claimed != 1:
            return "busy"
        charge = session.get(MembershipCharge, charge_id)
        assert charge is not None
        session.refresh(charge)
        attempt = charge.attempts
        token = session.scalar(
            select(MembershipPaymentMethod.token)
            .join(Membership, Membership.payment_method_id == MembershipPaymentMethod.id)
            .where(Membership.id == charge.membership_id))
        amount, currency, key = charge.amount, charge.currency, charge.idempotency_key

    result = charge_with_retries(functools.partial(
        provider.charge_saved, amount=amount, currency=currency, token=token or "",
        idempotency_key=f"{key}:{attempt}"))
    if result is None:
        return "unavailable"  # the lease runs out and the same attempt is resumed later
    stop_at(AFTER_RENEWAL_CHARGE, failpoint)
    with db.transaction() as session:
        settled = settle(session, clock=clock, config=config, charge_id=charge_id,
                         attempt=attempt, result=result)
    return result.status if settled else "settled"


def settle(session: Session, *, clock: Clock, config: MembershipConfig, charge_id: int,
           attempt: int, result: ChargeResult) -> bool:
    """Applies one attempt's outcome, once: False if another settler got there first."""
    now = clock.now()
    closed = session.execute(
        update(MembershipCharge)
        .where(MembershipCharge.id == charge_id, MembershipCharge.status == ChargeStatus.pending,
               MembershipCharge.attempt_open.is_(True), MembershipCharge.attempts == attempt)
        .values(attempt_open=False, lease_until=None, provider_ref=result.reference,
                decline_code=result.decline_code)
    ).rowcount
    if closed != 1:
        return False
    charge = session.get(MembershipCharge, charge_id)
    assert charge is not None
    session.refresh(charge)
    membership = service.get_membership(session, charge.membership_id)
    if result.status == "succeeded":
        charge.status, charge.paid_at = ChargeStatus.succeeded, now
        session.flush()
        on_paid(session, clock=clock, config=config, charge=charge, membership=membership)
    else:
        _on_declined(session, clock=clock, config=config, charge=charge, membership=membership)
    return True


AUTHENTICATION_REQUIRED = "authentication_required"


def withdraw_held(db: Database, *, clock: Clock, config: MembershipConfig,
                  provider: RecurringPaymentProvider, charge_id: int) -> Outcome | None:
    """Before a new attempt of a charge whose last attempt the bank held for the member
    (``authentication_required``, its PaymentIntent waiting on the authenticate page): the
    held one is withdrawn at the provider (``withdraw_charge``). The provider decides that
    and the member's confirmation one after the other, so exactly one of them wins:

        withdrawn      None: the new attempt may charge (the member's page can no longer pay)
        paid already   the charge is settled paid with it, as ``settle_authenticated`` would
                       (the same conditional UPDATE, so only one of the two applies);
                       ``settled``, and nothing new is charged
        undecided      ``busy``: the provider is still deciding; the next run tries again

    None too for a charge that is not held (nothing to withdraw)."""
    now = clock.now()
    with db.transaction() as session:
        charge = session.get(MembershipCharge, charge_id)
        if charge is None or charge.status is not ChargeStatus.pending or charge.attempt_open \
                or charge.decline_code != AUTHENTICATION_REQUIRED or not charge.provider_ref \
                or charge.next_attempt_at > now:
            return None
        reference = charge.provider_ref
    try:
        outcome = provider.withdraw_charge(reference)
    except ProviderUnavailable:
        return "unavailable"
    if outcome is None:
        return "busy"
    if outcome.status != "succeeded":
        return None
    with db.transaction() as session:
        _settle_paid_with(session, clock=clock, config=config, charge_id=charge_id,
                          reference=reference)
    return "settled"


def _settle_paid_with(session: Session, *, clock: Clock, config: MembershipConfig,
                      charge_id: int, reference: str) -> bool:
    """A held charge paid after all with its held PaymentIntent ``reference``: settled paid,
    once (only while pending, between attempts and on that very intent)."""
    moved = session.execute(
        update(MembershipCharge)
        .where(MembershipCharge.id == charge_id,
               MembershipCharge.status == ChargeStatus.pending,
               MembershipCharge.attempt_open.is_(False),
               MembershipCharge.provider_ref == reference)
        .values(status=ChargeStatus.succeeded, paid_at=clock.now(), decline_code=None)
    ).rowcount
    if moved != 1:
        return False
    charge = session.get(MembershipCharge, charge_id)
    assert charge is not None
    session.refresh(charge)
    on_paid(session, clock=clock, config=config, charge=charge,
            membership=service.get_membership(session, charge.membership_id))
    return True


def authentication_path(charge_id: int) -> str:
    """The member's page that confirms an off-session charge their bank held for them."""
    return f"/membership/charges/{charge_id}/authenticate"


def settle_authenticated(db: Database, *, clock: Clock, config: MembershipConfig,
                         provider: PaymentProvider, customer_id: int, charge_id: int) -> str:
    """After the member confirmed a held renewal with their bank (the authenticate page): the
    charge is settled paid if the provider says its PaymentIntent succeeded (never on the
    page's word). Only a charge still pending, between attempts and on that very intent,
    moves, so a repeat or a concurrent renewal attempt changes nothing twice. Returns
    ``paid``, ``undecided`` (the provider has not succeeded it) or ``not-pending``.

    A retry due while the member is on the page first withdraws this intent at the provider
    (``withdraw_held``): if the withdrawal comes first the member's confirmation fails there
    (``undecided`` here) and the retry charges; if the confirmation comes first the retry
    settles the charge paid with it and charges nothing. Either way one payment succeeds."""
    with db.transaction() as session:
        charge = _member_charge(session, customer_id=customer_id, charge_id=charge_id)
        if charge.status is not ChargeStatus.pending or not charge.provider_ref:
            return "not-pending"
        reference = charge.provider_ref
    result = provider.charge_status(reference)
    if result is None or result.status != "succeeded":
        return "undecided"
    with db.transaction() as session:
        if not _settle_paid_with(session, clock=clock, config=config, charge_id=charge_id,
                                 reference=reference):
            return "not-pending"
    return "paid"


def _member_charge(session: Session, *, customer_id: int, charge_id: int) -> MembershipCharge:
    charge = session.get(MembershipCharge, charge_id)
    if charge is None or service.get_membership(
            session, charge.membership_id).customer_id != customer_id:
        raise NotFound("no such charge")
    return charge


def held_charge(session: Session, *, customer_id: int, charge_id: int) -> MembershipCharge:
    """A charge of this member's waiting for them to authenticate; NotFound otherwise."""
    charge = _member_charge(session, customer_id=customer_id, charge_id=charge_id)
    if charge.status is not ChargeStatus.pending or charge.decline_code != \
            AUTHENTICATION_REQUIRED or not charge.provider_ref:
        raise NotFound("this payment is not waiting for you to confirm it")
    return charge


def on_paid(session: Session, *, clock: Clock, config: MembershipConfig,
             charge: MembershipCharge, membership: Membership) -> None:
    tier = service.get_tier(session, membership.tier_id)
    amount = format_money(charge.amount, charge.currency)
    if charge.kind is ChargeKind.change:
        target = service.get_tier(session, charge.target_tier_id or 0)
        restarts = charge.period_end != membership.current_period_end
        service.apply_tier_change(session, clock=clock, membership=membership, old_tier=tier,
                                  new_tier=target, restarts_period=restarts)
        return
    if charge.kind is ChargeKind.signup:
        session.execute(update(Membership).where(
            Membership.id == membership.id, Membership.status == MembershipStatus.incomplete)
            .values(status=MembershipStatus.active, updated_at=clock.now()))
        session.refresh(membership)
        event = "membership.started"
    else:
        if not service.advance_period(session, clock=clock, charge=charge):
            return
        session.refresh(membership)
        event = "membership.renewed"
    record_event(session, clock=clock, type=event, subject_type="membership",
                 subject_id=membership.id, customer_id=membership.customer_id,
                 payload={"membership_id": membership.id, "tier": tier.slug,
                          "status": membership.status.value, "amount": charge.amount,
                          "currency": charge.currency, "charge_id": charge.id,
                          "period_start": charge.period_start.isoformat()})
    service.queue_notice(
        session, clock=clock, customer_id=membership.customer_id, membership_id=membership.id,
        kind="receipt", dedupe_key=f"receipt:{charge.id}",
        subject=f"Receipt: {tier.name}, {amount}",
        body=f"Thank you. {amount} was charged to your card ending "
             f"{_last4(session, membership)} for {tier.name}, "
             f"{charge.period_start:%d %b %Y} to {charge.period_end:%d %b %Y}."
             + (f" {format_money(charge.credit_applied, charge.currency)} of credit was used."
                if charge.credit_applied else ""))
    if tier.consumable_variant_id is not None or tier.mix_size > 0:
        _send_consumable(session, clock=clock, config=config, charge=charge,
                         membership=membership, tier=tier)


def _last4(session: Session, membership: Membership) -> str:
    method = session.get(MembershipPaymentMethod, membership.payment_method_id or 0)
    return method.last4 if method else "????"


def _on_declined(session: Session, *, clock: Clock, config: MembershipConfig,
                 charge: MembershipCharge, membership: Membership) -> None:
    now = clock.now()
    tier = service.get_tier(session, membership.tier_id)
    if charge.kind is ChargeKind.signup:
        charge.status = ChargeStatus.failed
        service.end_membership(session, clock=clock, membership=membership,
                               status=MembershipStatus.failed, reason=EndReason.failed_payment,
                               from_statuses=(MembershipStatus.incomplete,))
        return
    if charge.kind is ChargeKind.change:
        charge.status = ChargeStatus.failed
        service.release_spot(session, clock=clock, tier_id=charge.target_tier_id or 0)
        return
    policy = config.dunning
    first = charge.first_failed_at or now
    charge.first_failed_at = first
    retry_at = policy.next_attempt_at(first_failed_at=first, failed_attempts=charge.attempts)
    session.execute(update(Membership).where(
        Membership.id == membership.id,
        Membership.status.in_((MembershipStatus.active, MembershipStatus.trialing)))
        .values(status=MembershipStatus.past_due, updated_at=now))
    amount = format_money(charge.amount, charge.currency)
    if retry_at is not None and charge.decline_code == AUTHENTICATION_REQUIRED:
        # Not a refusal: the bank wants the member present (3-D Secure on an off-session
        # charge). The notice links to the page that confirms this very PaymentIntent.
        charge.next_attempt_at = retry_at
        service.queue_notice(
            session, clock=clock, customer_id=membership.customer_id,
            membership_id=membership.id, kind="authentication-required",
            dedupe_key=f"authenticate:{charge.id}:{charge.attempts}",
            subject=f"Confirm the renewal of your {tier.name} membership",
            body=f"Your bank asks you to confirm the payment of {amount}: open "
                 f"{authentication_path(charge.id)} and confirm it with your bank. Until you "
                 f"do we will try again on {retry_at:%d %b %Y at %H:%M} UTC.")
    elif retry_at is not None:
        charge.next_attempt_at = retry_at
        service.queue_notice(
            session, clock=clock, customer_id=membership.customer_id,
            membership_id=membership.id, kind="payment-failed",
            dedupe_key=f"declined:{charge.id}:{charge.attempts}",
            subject=f"We could not renew your {tier.name} membership",
            body=f"Your card was declined ({charge.decline_code}) for {amount}. We will try "
                 f"again on {retry_at:%d %b %Y at %H:%M} UTC (try {charge.attempts + 1} of "
                 f"{policy.attempts}). Update your card at /membership to keep your perks.")
    else:
        charge.status = ChargeStatus.failed
        grace = policy.lapse_at(final_failed_at=now)
        session.execute(update(Membership).where(Membership.id == membership.id)
                        .values(grace_until=grace))
        service.queue_notice(
            session, clock=clock, customer_id=membership.customer_id,
            membership_id=membership.id, kind="final-notice",
            dedupe_key=f"final:{charge.id}",
            subject=f"Last chance to keep your {tier.name} membership",
            body=f"We tried {policy.attempts} times to take {amount}. Your membership lapses "
                 f"on {grace:%d %b %Y at %H:%M} UTC unless you update your card at /membership.")
    session.flush()
    record_event(session, clock=clock, type="membership.renewal_failed",
                 subject_type="membership", subject_id=membership.id,
                 customer_id=membership.customer_id,
                 payload={"membership_id": membership.id, "tier": tier.slug,
                          "attempt": charge.attempts, "decline_code": charge.decline_code,
                          "final": retry_at is None})


def _send_consumable(session: Session, *, clock: Clock, config: MembershipConfig,
                     charge: MembershipCharge, membership: Membership,
                     tier: MembershipTier) -> None:
    """The consumable tier's included goods, as one order at no charge, once per paid period:
    its one variant, or a rotating mix from its pool (``mix_rules``). An item out of stock is
    skipped this cycle or its value credited, as the tier says, item by item, and the member
    is told."""
    quantity = max(tier.consumable_quantity, 1)
    try:
        location = get_location_by_code(session, config.location_code)
    except NotFound:
        location = None
    if tier.mix_size > 0:
        chosen, unavailable = _mix_for(session, tier=tier, membership=membership, charge=charge,
                                       location_id=location.id if location else None)
    else:
        chosen, unavailable = [tier.consumable_variant_id or 0], []
    rows = {variant.id: (variant, product, family) for variant, product, family in
            session.execute(
                select(Variant, Product, ProductFamily)
                .join(Product, Product.id == Variant.product_id)
                .join(ProductFamily, ProductFamily.id == Product.family_id)
                .where(Variant.id.in_([*chosen, *unavailable])))}
    if tier.mix_size == 0 and not rows:
        raise NotFound("the tier's consumable variant no longer exists")
    shipped = []
    for variant_id in chosen:
        if variant_id in rows and location is not None and take_stock(
                session, location_id=location.id, variant_id=variant_id, quantity=quantity):
            shipped.append(rows[variant_id])
        elif variant_id in rows:
            unavailable.append(variant_id)
    customer = session.get(Customer, membership.customer_id)
    assert customer is not None
    missing = [rows[v] for v in unavailable if v in rows]
    if missing:
        _consumables_unavailable(session, clock=clock, charge=charge, membership=membership,
                                 tier=tier, customer=customer, missing=missing,
                                 quantity=quantity)
    if not shipped:
        return
    now = clock.now()
    order = Order(
        customer_id=customer.id, email=customer.email, status=OrderStatus.paid,
        currency=shipped[0][0].currency, subtotal_amount=0, discount_amount=0,
        shipping_amount=0, total_amount=0, refunded_amount=0,
        checkout_reference=f"membership-{charge.id}", location_id=location.id if location
        else None, fulfilment_path="central",
        acquisition_source=customer.acquisition_source,
        acquisition_campaign=customer.acquisition_campaign,
        shipping_address=membership.shipping_address or {}, created_at=now, paid_at=now)
    session.add(order)
    session.flush()
    for variant, product, family in shipped:
        session.add(OrderLine(
            order_id=order.id, variant_id=variant.id, sku=variant.sku,
            product_name=product.name, variant_name=variant.name, product_family=family.slug,
            condition_grade=variant.condition_grade,
            condition_disclosure=variant.condition_disclosure, unit_price_amount=0,
            quantity=quantity, line_total_amount=0))
    charge.order_id = order.id
    session.flush()
    record_event(session, clock=clock, type="order.created", subject_type="order",
                 subject_id=order.id, customer_id=customer.id,
                 payload={**order_event_payload(
                     order_id=order.id, total_amount=0, currency=order.currency,
                     acquisition_source=order.acquisition_source,
                     acquisition_campaign=order.acquisition_campaign,
                     product_families=sorted({f.slug for _, _, f in shipped}),
                     fulfilment_path="central"),
                          "membership_id": membership.id})


def _mix_for(session: Session, *, tier: MembershipTier, membership: Membership,
             charge: MembershipCharge, location_id: int | None) -> tuple[list[int], list[int]]:
    """This period's mix: (in stock, out of stock). Seeded by the member and the period, so a
    retried settlement chooses the same mix."""
    earlier = session.scalars(
        select(MembershipCharge.order_id).where(
            MembershipCharge.membership_id == membership.id, MembershipCharge.id != charge.id,
            MembershipCharge.order_id.is_not(None))
        .order_by(MembershipCharge.period_start.desc()).limit(tier.mix_no_repeat)).all()
    shipped: dict[int, set[int]] = {order_id: set() for order_id in earlier}
    for order_id, variant_id in session.execute(
            select(OrderLine.order_id, OrderLine.variant_id)
            .where(OrderLine.order_id.in_(earlier))):
        shipped[order_id].add(variant_id)
    available = dict(session.execute(
        select(StockLevel.variant_id, StockLevel.on_hand)
        .where(StockLevel.location_id == location_id,
               StockLevel.variant_id.in_(tier.mix_pool))).all()) if location_id else {}
    prefs = membership.mix_preferences or {}
    choice = choose_mix(
        tier.mix_pool, size=tier.mix_size, no_repeat=tier.mix_no_repeat,
        recent=[shipped[order_id] for order_id in earlier], available=available,
        prefer=prefs.get("prefer", ()), avoid=prefs.get("avoid", ()),
        rng=random.Random(f"mix:{membership.id}:{charge.period_start.isoformat()}"))
    return list(choice.in_stock), list(choice.out_of_stock)


def _consumables_unavailable(session: Session, *, clock: Clock, charge: MembershipCharge,
                             membership: Membership, tier: MembershipTier, customer: Customer,
                             missing: list[tuple[Variant, Product, ProductFamily]],
                             quantity: int) -> None:
    value = sum(variant.price_amount * quantity for variant, _, _ in missing)
    currency = missing[0][0].currency
    if tier.out_of_stock_policy is OutOfStockPolicy.credit:
        session.execute(update(Membership).where(Membership.id == membership.id)
                        .values(credit_amount=Membership.credit_amount + value))
        what = f"{format_money(value, currency)} is credited to your next renewal"
    else:
        what = "it is skipped this cycle" if len(missing) == 1 else "they are skipped this cycle"
    names = ", ".join(f"{product.name} ({variant.name})" for variant, product, _ in missing)
    first = missing[0][1].name
    service.queue_notice(
        session, clock=clock, customer_id=customer.id, membership_id=membership.id,
        kind="consumable-out-of-stock", dedupe_key=f"consumable:{charge.id}",
        subject=f"{first} is out of stock this cycle" if len(missing) == 1
        else f"{first} and {len(missing) - 1} more are out of stock this cycle",
        body=f"Your included {names} {'is' if len(missing) == 1 else 'are'} out of stock: "
             f"{what}.")
    for variant, _, _ in missing:
        record_event(session, clock=clock, type="membership.consumable_unavailable",
                     subject_type="membership", subject_id=membership.id,
                     customer_id=customer.id,
                     payload={"membership_id": membership.id, "sku": variant.sku,
                              "policy": tier.out_of_stock_policy.value})

