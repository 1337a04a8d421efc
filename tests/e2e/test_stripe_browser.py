"""Paying through Stripe.js in real Chromium, with the shop on the Stripe provider against
localstripe, whose Stripe.js stand-in (served at ``/js.stripe.com/v3/``) the pages load.

The stand-in has the Card Element and ``confirmCardSetup``/``confirmCardPayment`` but no Payment
Element and no working ``createPaymentMethod``, so these tests run ``/static/pay/stripe.js``'s
SetupIntent path; its Payment Element path needs Stripe's own Stripe.js (test mode). Its 3-D
Secure challenge is a two-button box in the page ("Complete authentication" / "Fail
authentication"), which the tests click as a shopper would. The pages run under their real
Content-Security-Policy (the context does not bypass it)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from dropline.adapters.stripe_payments import StripeProvider
from dropline.customers.service import register_customer
from dropline.memberships import jobs
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipPaymentMethod,
)
from dropline.memberships.rules import MembershipStatus
from dropline.notifications.models import MailOutboxItem
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import Payment, PaymentStatus
from dropline.web.app import create_app
from tests.builders import PASSWORD
from tests.drops.builders import make_drop
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.memberships.support import CONFIG, join, make_tier
from tests.payments.conftest import localstripe  # noqa: F401  (the session's server)
from tests.payments.localstripe_server import PUBLISHABLE_KEY, SECRET_KEY
from tests.payments.test_stripe_provider import THREE_D_SECURE, WEBHOOK_SECRET, stripe_js

VISA = "4242424242424242"


@pytest.fixture
def stripe_shop(db, clock, settings, localstripe) -> Iterator[LiveServer]:  # noqa: F811
    server = LiveServer(create_app(settings.model_copy(update={
        "payments": settings.payments.model_copy(update={
            "provider": "stripe", "stripe_secret_key": SECRET_KEY,
            "stripe_publishable_key": PUBLISHABLE_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": localstripe,
            "stripe_js_url": f"{localstripe}/js.stripe.com/v3/"})}),
        clock=clock, db=db, run_worker=False))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def strict_page(browser, request) -> Iterator[object]:
    """A page under the site's own Content-Security-Policy, recording what it refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.refused = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.refused.append(m.text)  # type: ignore[attr-defined]
            if "Content Security Policy" in m.text else None)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def _sign_in(page, url: str, email: str, then: str) -> None:
    page.goto(f"{url}/sign-in?next={then}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{then}")


def _fill_stand_in(scope, number: str) -> None:
    """The stand-in's Card Element: unlabelled inputs named by their placeholders."""
    scope.get_by_placeholder("number", exact=True).fill(number)
    scope.get_by_placeholder("exp_month", exact=True).fill("12")
    scope.get_by_placeholder("exp_year", exact=True).fill("30")
    scope.get_by_placeholder("cvc", exact=True).fill("123")
    scope.get_by_placeholder("postal_code", exact=True).fill("E16QE")


def test_a_drop_is_paid_through_stripe_js_with_3d_secure_answered_in_the_page(
        strict_page, stripe_shop, db, clock, localstripe):  # noqa: F811
    page = strict_page
    world = make_drop(db, clock, cap=5)
    with db.transaction() as session:
        register_customer(session, clock=clock, email="ada@example.com", password=PASSWORD)
    _sign_in(page, stripe_shop.url, "ada@example.com", f"/drops/{world.drop_id}/me")

    policy = httpx.get(f"{stripe_shop.url}/", timeout=10).headers["content-security-policy"]
    assert localstripe not in policy  # only the payment pages widen the policy
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 Fournier St")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("E1 6QE")
    _fill_stand_in(page, THREE_D_SECURE)
    page.get_by_role("button", name="Pay now").click()
    # The bank asks once when the card is set up in the page, and again for the payment.
    page.get_by_role("button", name="Complete authentication").click()
    page.get_by_text("Your bank asks you to confirm this payment").wait_for()
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url("**/orders/*")

    assert page.get_by_text("Thank you: your order is placed.").is_visible()
    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        payment = session.scalars(select(Payment)).one()
        assert order.status is OrderStatus.paid
        assert payment.status is PaymentStatus.succeeded
        assert payment.provider_ref.startswith("pi_") and payment.card_last4 == "3155"
    intent = httpx.get(f"{localstripe}/v1/payment_intents/{payment.provider_ref}",
                       auth=(SECRET_KEY, ""), timeout=10).json()
    assert intent["status"] == "succeeded" and intent["amount"] == order.total_amount
    assert page.refused == []  # type: ignore[attr-defined]


def test_a_failed_authentication_leaves_the_order_unpaid_and_the_unit_given_back(
        strict_page, stripe_shop, db, clock):
    page = strict_page
    world = make_drop(db, clock, cap=1)
    with db.transaction() as session:
        register_customer(session, clock=clock, email="bo@example.com", password=PASSWORD)
    _sign_in(page, stripe_shop.url, "bo@example.com", f"/drops/{world.drop_id}/me")
    page.get_by_label("Full name").fill("Bo Li")
    page.get_by_label("Address", exact=True).fill("2 Fournier St")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("E1 6QE")
    _fill_stand_in(page, THREE_D_SECURE)
    page.get_by_role("button", name="Pay now").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.get_by_text("Your bank asks you to confirm this payment").wait_for()
    page.get_by_role("button", name="Fail authentication").click()
    page.wait_for_url("**/orders/*")

    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        assert order.status is OrderStatus.payment_failed
        assert session.scalars(select(Payment.status)).one() is PaymentStatus.declined
    page.goto(f"{stripe_shop.url}/drops/{world.drop_id}/me")  # the one unit is back on sale
    assert page.get_by_role("button", name="Pay now").is_visible()


def test_a_member_joins_paying_through_stripe_js(strict_page, stripe_shop, db, clock):
    page = strict_page
    make_tier(db, clock, slug="friends", price=900)
    with db.transaction() as session:
        register_customer(session, clock=clock, email="cy@example.com", password=PASSWORD)
    _sign_in(page, stripe_shop.url, "cy@example.com", "/membership")
    tile = page.locator("li.tile", has_text="Friends")
    _fill_stand_in(tile, VISA)
    tile.get_by_role("button", name="Join Friends").click()
    page.get_by_text("Welcome in: your membership has started.").wait_for()

    assert page.get_by_test_id("status").inner_text() == "active"
    assert page.get_by_text("ending 4242").is_visible()
    assert page.refused == []  # type: ignore[attr-defined]


def test_a_renewal_the_bank_holds_off_session_is_confirmed_from_the_dunning_link(
        strict_page, stripe_shop, db, clock, localstripe):  # noqa: F811
    """Stripe answers an off-session renewal on a 3-D Secure card with
    ``authentication_required`` (localstripe leaves the intent waiting, which the provider
    reads the same way): the member gets a notice linking to the page that confirms that
    PaymentIntent, and confirming it there renews the membership."""
    provider = StripeProvider(secret_key=SECRET_KEY, api_base=localstripe)
    tier = make_tier(db, clock, slug="friends", price=900)
    with db.transaction() as session:
        customer_id = register_customer(session, clock=clock, email="di@example.com",
                                        password=PASSWORD).id
    membership_id = join(db, clock, provider, customer_id=customer_id, tier_id=tier,
                         card=provider.describe_card(stripe_js(localstripe, VISA)))
    held_card = stripe_js(localstripe, THREE_D_SECURE)  # saved without a set-up check
    stripe_customer = httpx.post(f"{localstripe}/v1/customers", auth=(SECRET_KEY, ""),
                                 timeout=10).json()["id"]
    httpx.post(f"{localstripe}/v1/payment_methods/{held_card}/attach", auth=(SECRET_KEY, ""),
               data={"customer": stripe_customer}, timeout=10)
    with db.transaction() as session:
        method_id = session.get(Membership, membership_id).payment_method_id
        session.get(MembershipPaymentMethod, method_id).token = f"{stripe_customer}:{held_card}"
    clock.advance(days=32)

    jobs.renew_due(db, clock=clock, config=CONFIG, provider=provider)

    with db.transaction() as session:
        charge = session.scalars(select(MembershipCharge).where(
            MembershipCharge.kind == ChargeKind.renewal)).one()
        [notice] = [item.payload for item in session.scalars(select(MailOutboxItem).where(
            MailOutboxItem.template == "membership_notice"))
            if item.payload["kind"] == "authentication-required"]
        assert (charge.status, charge.decline_code) == (ChargeStatus.pending,
                                                         "authentication_required")
        assert session.get(Membership, membership_id).status is MembershipStatus.past_due
    link = f"/membership/charges/{charge.id}/authenticate"
    assert link in notice["body"]

    page = strict_page
    _sign_in(page, stripe_shop.url, "di@example.com", "/membership")
    page.goto(stripe_shop.url + link)
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url("**/membership?done=renewed")

    assert page.get_by_test_id("status").inner_text() == "active"
    with db.transaction() as session:
        charge = session.get(MembershipCharge, charge.id)
        assert charge.status is ChargeStatus.succeeded
    intent = httpx.get(f"{localstripe}/v1/payment_intents/{charge.provider_ref}",
                       auth=(SECRET_KEY, ""), timeout=10).json()
    assert intent["status"] == "succeeded" and intent["amount"] == 900
    assert page.refused == []  # type: ignore[attr-defined]
