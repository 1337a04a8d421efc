"""The recovery job (``orders.jobs``, composed in ``dropline.recovery``) on the database path,
on both engines: an order whose worker died between the charge and the settle is settled by
the job from the provider's answer to its idempotency key (paid, or failed with its units
back), never charged again; a second pass changes nothing; a payment the provider never saw
is left for the shopper's retry. The same with a real process killed on the Redis gate is in
tests/drops/test_crash_recovery.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.adapters.payments import LocalCardProvider
from dropline.bootstrap import build_services
from dropline.cli import app
from dropline.clock import FrozenClock
from dropline.drops import flows
from dropline.drops.models import DropBuyer, DropSlot
from dropline.drops.service import HoldLine
from dropline.orders.jobs import RECOVERY_GRACE_SECONDS
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import LocalProviderCharge, Payment, PaymentStatus
from dropline.recovery import recover_payments
from tests.builders import ADDRESS
from tests.drops.builders import CARD, DECLINED_CARD, make_drop, make_shopper

runner = CliRunner()


class WorkerDied(BaseException):
    """Stands for the process dying: nothing after it runs (not an Exception: no handler
    of the flow catches it)."""


class DiesAfterCharging:
    """The local provider, but the worker dies as soon as the charge is made."""

    def __init__(self, provider: LocalCardProvider) -> None:
        self.provider, self.name = provider, provider.name

    def charge(self, **request):
        self.provider.charge(**request)
        raise WorkerDied


def buy_and_die(db, clock, settings, world, shopper, card) -> None:
    with pytest.raises(WorkerDied):
        flows.purchase(db, clock=clock, settings=settings,
                       provider=DiesAfterCharging(LocalCardProvider(db.sessions, clock)),
                       drop_id=world.drop_id, shopper=shopper,
                       lines=[HoldLine(world.variant_ids[0], 2)], admission_token=None,
                       card=card, shipping_address=ADDRESS, checkout_reference="ref-1")


def snapshot(db, drop_id: int, customer_id: int) -> dict[str, object]:
    with db.transaction() as session:
        order = session.scalars(select(Order)).one()
        payment = session.scalars(select(Payment)).one()
        buyer = session.get(DropBuyer, (drop_id, customer_id))
        return {"order": order.status, "payment": payment.status,
                "settled_at": payment.updated_at,
                "charges": session.scalar(select(func.count())
                                          .select_from(LocalProviderCharge)),
                "left": session.scalar(select(func.sum(DropSlot.remaining))
                                       .where(DropSlot.drop_id == drop_id)),
                "count": buyer.units if buyer else 0}


def recover(db, clock, settings):
    later = FrozenClock(clock.now() + timedelta(seconds=RECOVERY_GRACE_SECONDS))
    services = build_services(settings, clock=later, db=db)
    return recover_payments(db, clock=later, provider=services.payments,
                            policy=services.checkout, redis_url=None)


@pytest.mark.parametrize(("card", "order", "payment", "left", "count"), [
    (CARD, OrderStatus.paid, PaymentStatus.succeeded, 3, 2),
    (DECLINED_CARD, OrderStatus.payment_failed, PaymentStatus.declined, 5, 0),
], ids=["charged", "declined"])
def test_an_order_charged_but_never_settled_is_settled_once_by_the_job(
        db, clock, settings, card, order, payment, left, count):
    world = make_drop(db, clock, cap=5, limit=2)
    shopper = make_shopper(db, clock)
    buy_and_die(db, clock, settings, world, shopper, card)
    stranded = snapshot(db, world.drop_id, shopper.customer_id)
    assert (stranded["order"], stranded["payment"], stranded["charges"]) == (
        OrderStatus.pending_payment, PaymentStatus.pending, 1)

    first = recover(db, clock, settings)

    after = snapshot(db, world.drop_id, shopper.customer_id)
    assert (after["order"], after["payment"]) == (order, payment)
    assert (after["left"], after["count"], after["charges"]) == (left, count, 1)
    assert (first.paid, first.failed) == ((1, 0) if card is CARD else (0, 1))

    second = recover(db, clock, settings)

    assert (second.looked_up, second.paid, second.failed) == (0, 0, 0)
    assert snapshot(db, world.drop_id, shopper.customer_id) == after


def test_a_payment_the_provider_never_saw_is_left_for_the_shoppers_retry(db, clock, settings):
    world = make_drop(db, clock, cap=5, limit=2)
    shopper = make_shopper(db, clock)

    class DiesBeforeCharging:
        name = "local"

        def charge(self, **request):
            raise WorkerDied

    with pytest.raises(WorkerDied):
        flows.purchase(db, clock=clock, settings=settings, provider=DiesBeforeCharging(),
                       drop_id=world.drop_id, shopper=shopper,
                       lines=[HoldLine(world.variant_ids[0], 2)], admission_token=None,
                       card=CARD, shipping_address=ADDRESS, checkout_reference="ref-1")

    recovered = recover(db, clock, settings)

    assert (recovered.looked_up, recovered.not_charged, recovered.paid) == (1, 1, 0)
    assert snapshot(db, world.drop_id, shopper.customer_id)["order"] is \
        OrderStatus.pending_payment
    order_id = flows.purchase(
        db, clock=clock, settings=settings, provider=LocalCardProvider(db.sessions, clock),
        drop_id=world.drop_id, shopper=shopper, lines=[HoldLine(world.variant_ids[0], 2)],
        admission_token=None, card=CARD, shipping_address=ADDRESS, checkout_reference="ref-1")
    after = snapshot(db, world.drop_id, shopper.customer_id)
    assert (after["order"], after["charges"], after["count"]) == (OrderStatus.paid, 1, 2)
    with db.transaction() as session:
        assert session.scalar(select(Order.id)) == order_id


def test_a_recent_payment_is_not_looked_up_before_the_grace(db, clock, settings):
    world = make_drop(db, clock, cap=5, limit=2)
    shopper = make_shopper(db, clock)
    buy_and_die(db, clock, settings, world, shopper, CARD)
    services = build_services(settings, clock=clock, db=db)

    recovered = recover_payments(db, clock=clock, provider=services.payments,
                                 policy=services.checkout, redis_url=None)

    assert recovered.looked_up == 0
    assert snapshot(db, world.drop_id, shopper.customer_id)["order"] is \
        OrderStatus.pending_payment


def _row(output: str, label: str) -> str:
    line = next(line for line in output.splitlines() if label in line)
    return line.replace("│", " ").split()[-1]


def test_drops_and_payments_reconcile_run_the_same_recovery_and_say_what_they_did(
        db, clock, settings, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    monkeypatch.delenv("DROPLINE_REDIS_URL", raising=False)
    world = make_drop(db, clock, cap=5, limit=2)
    shopper = make_shopper(db, clock)
    buy_and_die(db, clock, settings, world, shopper, CARD)

    by_drop = runner.invoke(app, ["drops", "reconcile", str(world.drop_id)])
    again = runner.invoke(app, ["payments", "reconcile"])

    assert by_drop.exit_code == 0, by_drop.output
    assert _row(by_drop.output, "settled paid") == "1"
    assert "no Redis gate" in by_drop.output
    assert again.exit_code == 0, again.output
    assert (_row(again.output, "looked up"), _row(again.output, "settled paid")) == ("0", "0")
    assert snapshot(db, world.drop_id, shopper.customer_id)["order"] is OrderStatus.paid
    for command in (["payments", "reconcile"], ["drops", "reconcile"]):
        help_text = runner.invoke(app, [*command, "--help"]).output
        assert f"Example: dropline {' '.join(command)}" in help_text
