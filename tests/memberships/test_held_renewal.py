"""A renewal the bank held for the member (``authentication_required``) cannot be paid twice:
before a new attempt (a scheduled retry, or a new card) charges anything, the held charge is
withdrawn at the provider (``flows.withdraw_held``). The provider decides the withdrawal and the
member's confirmation one after the other, so whichever comes first wins and exactly one payment
succeeds. Run on both providers: the local one (its 3-D Secure test card) and Stripe through
localstripe (``POST /v1/payment_intents/{id}/cancel``, which localstripe implements; the
member's confirmation is localstripe's Stripe.js stand-in endpoint ``_authenticate``).
Concurrency with real threads and one connection each, as in ``test_races``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from dropline.adapters.payments import LocalCardProvider
from dropline.adapters.stripe_payments import StripeProvider
from dropline.memberships import flows, jobs
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipPaymentMethod,
)
from dropline.memberships.rules import MembershipStatus
from tests.memberships.support import CONFIG, join, make_customer, make_tier
from tests.orders.test_races import race
from tests.payments.conftest import localstripe  # noqa: F401  (the session's server)
from tests.payments.localstripe_server import PUBLISHABLE_KEY, SECRET_KEY
from tests.payments.test_stripe_provider import THREE_D_SECURE, VISA, stripe_js


@dataclass
class Provider:
    """A real provider, and what the member's browser and the member's bank do with it."""

    provider: LocalCardProvider | StripeProvider
    good_card: Callable[[], object]  # a CardToken that pays
    held_token: Callable[[], str]  # a saved-card token whose bank asks for the member
    confirm: Callable[[str], bool]  # the member answers their bank for a held charge: paid?
    earlier: set[str] = field(default_factory=set)  # charges made before the test's renewal


def _local(db, clock, _request) -> Provider:
    provider = LocalCardProvider(db.sessions, clock)

    def confirm(reference: str) -> bool:
        return provider.answer_bank(reference, client_secret=provider.client_secret(reference),
                                    approved=True)

    return Provider(provider, lambda: provider.describe_card("pm_card_visa"),
                    lambda: provider.save_card(card=provider.describe_card(
                        "pm_card_authenticationRequired")).token, confirm)


def _stripe(db, clock, request) -> Provider:
    localstripe = request.getfixturevalue("localstripe")
    provider = StripeProvider(secret_key=SECRET_KEY, api_base=localstripe)

    def held_token() -> str:  # saved without a set-up check, as in the browser test
        method = stripe_js(localstripe, THREE_D_SECURE)
        customer = httpx.post(f"{localstripe}/v1/customers", auth=(SECRET_KEY, ""),
                              timeout=10).json()["id"]
        httpx.post(f"{localstripe}/v1/payment_methods/{method}/attach", auth=(SECRET_KEY, ""),
                   data={"customer": customer}, timeout=10).raise_for_status()
        return f"{customer}:{method}"

    def confirm(reference: str) -> bool:
        secret, _ = provider.authentication_secret(reference)
        answer = httpx.post(f"{localstripe}/v1/payment_intents/{reference}/_authenticate",
                            data={"key": PUBLISHABLE_KEY, "client_secret": secret,
                                  "success": "true"}, timeout=10)
        return answer.status_code == 200  # 400 once the intent was cancelled

    return Provider(provider, lambda: provider.describe_card(stripe_js(localstripe, VISA)),
                    held_token, confirm)


@pytest.fixture(params=["local", "stripe"])
def bank(request, db, clock) -> Provider:
    return {"local": _local, "stripe": _stripe}[request.param](db, clock, request)


def held_renewal(db, clock, bank: Provider) -> tuple[int, int, int, str]:
    """A member whose renewal the bank held: (customer, membership, charge, held reference).
    The provider's charges made before it are noted (localstripe keeps the session's)."""
    tier = make_tier(db, clock, price=900)
    customer = make_customer(db, clock)
    member = join(db, clock, bank.provider, customer_id=customer, tier_id=tier,
                  card=bank.good_card())
    held = bank.held_token()
    with db.transaction() as session:
        method_id = session.get(Membership, member).payment_method_id
        session.get(MembershipPaymentMethod, method_id).token = held
        end = session.get(Membership, member).current_period_end
    clock.current = end + timedelta(minutes=1)
    jobs.renew_due(db, clock=clock, config=CONFIG, provider=bank.provider)
    with db.transaction() as session:
        charge = session.scalars(select(MembershipCharge).where(
            MembershipCharge.membership_id == member,
            MembershipCharge.kind == ChargeKind.renewal)).one()
        assert (charge.status, charge.decline_code) == (ChargeStatus.pending,
                                                         "authentication_required")
        reference = charge.provider_ref
    bank.earlier = {c.reference for c in _listed(clock, bank)} - {reference}
    return customer, member, charge.id, reference


def _listed(clock, bank: Provider):
    if isinstance(bank.provider, LocalCardProvider):
        since, until = clock.now() - timedelta(days=1), clock.now() + timedelta(days=1)
    else:  # localstripe stamps intents with the real time
        now = datetime.now(UTC)
        since, until = now - timedelta(hours=1), now + timedelta(hours=1)
    return bank.provider.list_charges(since=since, until=until)


def succeeded_payments(db, clock, bank: Provider, charge_id: int) -> int:
    """Succeeded charges at the provider for this renewal (any attempt's key), made since the
    renewal was held."""
    with db.transaction() as session:
        key = session.get(MembershipCharge, charge_id).idempotency_key
    return sum(1 for c in _listed(clock, bank) if c.reference not in bank.earlier
               and c.idempotency_key.startswith(f"{key}:") and c.status == "succeeded")


def renewed_once(db, member: int, charge_id: int) -> None:
    with db.transaction() as session:
        charge = session.get(MembershipCharge, charge_id)
        membership = session.get(Membership, member)
        assert charge.status is ChargeStatus.succeeded
        assert (membership.status, membership.period_index) == (MembershipStatus.active, 1)


def new_card(db, clock, bank: Provider, customer: int):
    """The retry: the member gives a card that pays (which retries the held renewal at once)."""
    return flows.update_payment_method(db, clock=clock, config=CONFIG, provider=bank.provider,
                                       customer_id=customer, card=bank.good_card())


def test_confirmed_before_the_retry_the_retry_settles_it_and_charges_nothing_new(db, clock,
                                                                                bank):
    customer, member, charge_id, reference = held_renewal(db, clock, bank)
    assert bank.confirm(reference)  # the member answered the bank; the page's return is lost

    new_card(db, clock, bank, customer)

    renewed_once(db, member, charge_id)
    with db.transaction() as session:
        charge = session.get(MembershipCharge, charge_id)
        assert (charge.provider_ref, charge.attempts) == (reference, 1)  # no new attempt
    assert succeeded_payments(db, clock, bank, charge_id) == 1
    # The page's return, late, changes nothing more.
    assert flows.settle_authenticated(db, clock=clock, config=CONFIG, provider=bank.provider,
                                      customer_id=customer, charge_id=charge_id) == "not-pending"


def test_a_retry_first_withdraws_the_held_charge_so_the_confirmation_cannot_pay(db, clock,
                                                                               bank):
    customer, member, charge_id, reference = held_renewal(db, clock, bank)

    new_card(db, clock, bank, customer)
    confirmed = bank.confirm(reference)  # the member, on the page opened before

    assert not confirmed
    assert flows.settle_authenticated(db, clock=clock, config=CONFIG, provider=bank.provider,
                                      customer_id=customer, charge_id=charge_id) == "not-pending"
    renewed_once(db, member, charge_id)
    with db.transaction() as session:
        charge = session.get(MembershipCharge, charge_id)
        assert charge.provider_ref != reference and charge.attempts == 2
    assert succeeded_payments(db, clock, bank, charge_id) == 1
    assert bank.provider.charge_status(reference).status == "declined"


def test_the_confirmation_and_a_retry_at_once_pay_exactly_once(db, clock, bank):
    customer, member, charge_id, reference = held_renewal(db, clock, bank)
    good = bank.good_card()

    def member_confirms() -> str:
        bank.confirm(reference)
        return flows.settle_authenticated(db, clock=clock, config=CONFIG,
                                          provider=bank.provider, customer_id=customer,
                                          charge_id=charge_id)

    def member_gives_a_new_card() -> int:
        return flows.update_payment_method(db, clock=clock, config=CONFIG,
                                           provider=bank.provider, customer_id=customer,
                                           card=good)

    results = race(2, lambda i: member_confirms() if i == 0 else member_gives_a_new_card())

    assert not [r for r in results if isinstance(r, Exception)], results
    renewed_once(db, member, charge_id)
    assert succeeded_payments(db, clock, bank, charge_id) == 1
