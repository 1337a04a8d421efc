"""Reconciliation against the provider's list of charges (``dropline.reconciliation``,
``dropline payments reconcile --since``), on the local provider (its ledger) and on Stripe
(localstripe's PaymentIntent list): a charge whose settlement never ran is settled; a charge
without a paid order and a paid order without a charge are kept as discrepancies, shown on the
admin overview; a second pass changes nothing.

The clock is the wall clock's now, frozen: localstripe stamps its PaymentIntents with real
time. localstripe's list takes no ``created`` filter, so the provider lists it whole and
filters by time itself (``StripeProvider.list_charges``); it is shared by the test session,
so on Stripe the tests name the discrepancies they expect among any others' charges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from dropline.adapters.payments import LocalCardProvider
from dropline.admin.service import create_admin_user
from dropline.adapters.stripe_payments import StripeProvider
from dropline.bootstrap import build_services
from dropline.cli import app
from dropline.clock import FrozenClock
from dropline.drops import flows
from dropline.drops.service import HoldLine
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import Payment, PaymentDiscrepancy, PaymentStatus
from dropline.reconciliation import reconcile_payments
from tests.builders import ADDRESS
from tests.drops.builders import CARD, make_drop, make_shopper
from tests.orders.test_recovery import DiesAfterCharging, WorkerDied
from tests.payments.localstripe_server import SECRET_KEY
from tests.payments.test_stripe_provider import VISA, stripe_js
from tests.web.support import changed_tables, snapshot

runner = CliRunner()


@pytest.fixture
def now() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(params=["local", "stripe"])
def provider_and_card(request, db, now):
    """The provider under test and a card it knows."""
    if request.param == "local":
        return LocalCardProvider(db.sessions, now), CARD
    localstripe = request.getfixturevalue("localstripe")
    stripe = StripeProvider(secret_key=SECRET_KEY, api_base=localstripe)
    return stripe, stripe.describe_card(stripe_js(localstripe, VISA))


def policy_of(settings, db, clock):
    return build_services(settings, clock=clock, db=db).checkout


def buy(db, clock, settings, provider, card, reference: str, world) -> int:
    return flows.purchase(db, clock=clock, settings=settings, provider=provider,
                          drop_id=world.drop_id, shopper=make_shopper(db, clock),
                          lines=[HoldLine(world.variant_ids[0], 1)], admission_token=None,
                          card=card, shipping_address=ADDRESS, checkout_reference=reference)


def reconcile(db, clock, settings, provider):
    return reconcile_payments(db, clock=clock, provider=provider,
                              policy=policy_of(settings, db, clock),
                              since=clock.now() - timedelta(hours=1),
                              until=clock.now() + timedelta(minutes=10))


def discrepancies(db) -> list[tuple[str, str, int | None]]:
    with db.transaction() as session:
        return [(d.kind, d.reference, d.order_id)
                for d in session.scalars(select(PaymentDiscrepancy))]


def test_a_charge_whose_settlement_never_ran_is_settled_from_the_list(
        db, now, settings, provider_and_card):
    provider, card = provider_and_card
    world = make_drop(db, now, cap=5, limit=2)
    with pytest.raises(WorkerDied):
        flows.purchase(db, clock=now, settings=settings, provider=DiesAfterCharging(provider),
                       drop_id=world.drop_id, shopper=make_shopper(db, now),
                       lines=[HoldLine(world.variant_ids[0], 2)], admission_token=None,
                       card=card, shipping_address=ADDRESS, checkout_reference="ref-1")

    first = reconcile(db, now, settings, provider)

    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        payment = session.scalars(select(Payment)).one()
        assert (order.status, payment.status) == (OrderStatus.paid, PaymentStatus.succeeded)
        assert payment.provider_ref is not None
    assert (first.settled_paid, first.settled_declined) == (1, 0)
    assert ("paid_without_charge", payment.idempotency_key, order.id) not in discrepancies(db)
    before = snapshot(db)

    second = reconcile(db, now, settings, provider)

    assert (second.settled_paid, second.found) == (0, [])
    assert changed_tables(before, snapshot(db)) == []


def test_a_charge_without_an_order_and_a_paid_order_without_a_charge_are_kept_once(
        db, now, settings, provider_and_card):
    provider, card = provider_and_card
    world = make_drop(db, now, cap=5, limit=2)
    agreeing = buy(db, now, settings, provider, card, "ref-agreeing", world)
    unpaid = buy(db, now, settings, provider, card, "ref-unpaid", world)
    with db.transaction() as session:  # marked paid by hand, never charged under this key
        session.execute(update(Payment).where(Payment.order_id == unpaid)
                        .values(idempotency_key="never-charged"))
    stray = provider.charge(amount=1234, currency="GBP", card=card,
                            idempotency_key="made-outside-the-shop")

    first = reconcile(db, now, settings, provider)

    found = discrepancies(db)
    assert ("charge_without_order", stray.reference, None) in found
    assert ("paid_without_charge", "never-charged", unpaid) in found
    assert not [d for d in found if d[2] == agreeing]
    assert len(first.found) == len(found)  # each said once, when first found
    before = snapshot(db)

    second = reconcile(db, now, settings, provider)

    assert second.found == []
    assert changed_tables(before, snapshot(db)) == []


def test_the_cli_reconciles_since_a_period_and_the_overview_shows_what_is_left(
        db, now, settings, client, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    monkeypatch.delenv("DROPLINE_REDIS_URL", raising=False)
    provider = LocalCardProvider(db.sessions, now)
    stray = provider.charge(amount=990, currency="GBP", card=CARD, idempotency_key="stray-1")

    result = runner.invoke(app, ["payments", "reconcile", "--since", "2h", "--grace", "0"])

    assert result.exit_code == 0, result.output
    assert f"left: charge {stray.reference} without a paid order" in result.output
    with db.transaction() as session:
        create_admin_user(session, clock=now, email="ops@brand.example",
                          password="console password 1")
    client.post("/admin/login", data={"email": "ops@brand.example",
                                      "password": "console password 1", "next": "/admin"})
    page = client.get("/admin")
    assert page.status_code == 200
    assert "Payments to check (1)" in page.text and stray.reference in page.text
    help_text = runner.invoke(app, ["payments", "reconcile", "--help"]).output
    assert "dropline payments reconcile --since 24h" in help_text


@pytest.mark.parametrize("since", ["yesterday", "2h30", "2999-01-01", "-3d"])
def test_the_cli_refuses_a_period_it_cannot_read_in_one_line(db, monkeypatch, since):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    before = snapshot(db)

    result = runner.invoke(app, ["payments", "reconcile", "--since", since])

    assert result.exit_code == 2, result.output
    assert "--since" in result.output and "Traceback" not in result.output
    assert changed_tables(before, snapshot(db)) == []
