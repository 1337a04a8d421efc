"""Jobs run once with several real workers, one of them killed in the middle of a job.

For each job: due work is written to one PostgreSQL database, a ``dropline worker`` process
stops at the job's failpoint (``dropline.failpoints``: after the irreversible step, before it
is recorded) and is killed there with SIGKILL, then two more workers run together until the
work is done. Each due job's effect must have happened once and none may be lost:

    renewals          one provider charge and one paid renewal per membership, one period on
    webhook delivery  every event received; the one in the killed worker's hands may arrive
                      twice (at least once), always with the same webhook-id and body, so a
                      receiver that de-duplicates by webhook-id handles each event once
    route planning    one stored plan and one ``delivery_window.planned`` event per window
    payment recovery  each stranded order paid once, from the one charge already made, its
                      units counted once

And the job lock itself (``db.exclusive_job``): held by one process at a time, released when
its holder is killed.

PostgreSQL only: the workers are separate processes on one database, as on several nodes
(SQLite deployments are one machine). Synchronised by the failpoint's log line and by polling
the database with a deadline, never by sleeping for a guessed time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.clock import FrozenClock
from dropline.db import exclusive_job
from dropline.drops import flows as drop_flows
from dropline.drops.models import DropBuyer, DropSlot
from dropline.drops.service import HoldLine
from dropline.events.models import DomainEvent
from dropline.events.service import record_event
from dropline.failpoints import AFTER_LOOKUP, AFTER_RENEWAL_CHARGE, AFTER_SEND, AFTER_SOLVE
from dropline.fulfilment import rules as R
from dropline.fulfilment import service as fulfilment
from dropline.fulfilment.models import DeliveryWindow, RoutePlanRow, WindowStatus
from dropline.memberships.models import ChargeKind, ChargeStatus, Membership, MembershipCharge
from dropline.orders.models import Order, OrderStatus
from dropline.payments.models import LocalProviderCharge, Payment, PaymentStatus
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery
from dropline.webhooks.service import create_endpoint
from dropline.webhooks.targets import TargetPolicy
from tests.builders import ADDRESS
from tests.drops.builders import CARD, make_drop, make_shopper
from tests.drops.processes import wait_for
from tests.fulfilment.builders import HACKNEY, make_item, make_network, make_orders, make_windows
from tests.memberships.support import join, make_customer, make_tier
from tests.webhooks.receiver import Receiver, running_receiver

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="several worker processes on one database need PostgreSQL "
           "(set DROPLINE_TEST_DATABASE_URL)")

SRC = Path(__file__).resolve().parents[2] / "src"
LEASE_SECONDS = 2  # a killed worker's charge or delivery is taken over this soon
LOCAL = TargetPolicy(allow_http=True, allow_private=True)


@dataclass
class Workers:
    database_url: str
    folder: Path
    receiver: Receiver

    def start(self, name: str, failpoint: str | None = None,
              once: bool = False) -> tuple[subprocess.Popen, Path]:
        log = self.folder / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": str(SRC), "DROPLINE_DATABASE_URL": self.database_url,
               "DROPLINE_SECRET_KEY": "test-secret", "DROPLINE_CURRENCY": "GBP",
               "DROPLINE_EMAIL_DIR": str(self.folder / "outbox"),
               "DROPLINE_WEBHOOK_ALLOW_HTTP": "true",
               "DROPLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
               "DROPLINE_WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
               "DROPLINE_MEMBERS_CHARGE_LEASE_SECONDS": str(LEASE_SECONDS),
               "DROPLINE_TESTING_FAILPOINT": failpoint or ""}
        for name_ in ("DROPLINE_REDIS_URL", "DROPLINE_DROPS_REDIS_URL", "DROPLINE_SMTP_URL"):
            env.pop(name_, None)
        if not failpoint:
            env.pop("DROPLINE_TESTING_FAILPOINT")
        with open(log, "wb") as out:
            arguments = ["worker", "--interval", "0.2", *(["--once"] if once else [])]
            process = subprocess.Popen(
                [sys.executable, "-c", f"from dropline.cli import app; app({arguments!r})"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return process, log


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


@contextmanager
def workers(database_url: str, folder: Path) -> Iterator[Workers]:
    with running_receiver() as receiver:
        yield Workers(database_url, folder, receiver)


# --- the scenarios: due work, when it is all done, and what must have happened once --------


def real_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def seed_renewals(db, clock, receiver) -> dict[str, Any]:
    """Four monthly members who joined 31 days ago: one renewal each is due now."""
    joined = FrozenClock(real_now() - timedelta(days=31))
    provider = LocalCardProvider(db.sessions, joined)
    tier = make_tier(db, joined, price=1000)
    members = [join(db, joined, provider, customer_id=make_customer(db, joined), tier_id=tier)
               for _ in range(4)]
    return {"members": members}


def renewals_done(db, ctx) -> bool:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(MembershipCharge).where(
            MembershipCharge.kind == ChargeKind.renewal,
            MembershipCharge.status == ChargeStatus.succeeded)) == len(ctx["members"])


def check_renewals(db, ctx, receiver) -> None:
    with db.transaction() as session:
        renewals = session.scalars(select(MembershipCharge).where(
            MembershipCharge.kind == ChargeKind.renewal)).all()
        assert sorted(c.membership_id for c in renewals) == sorted(ctx["members"])
        # One attempt each: the killed worker's attempt was resumed with its key, not retried.
        assert all((c.status, c.attempts) == (ChargeStatus.succeeded, 1) for c in renewals)
        keys = [f"{c.idempotency_key}:1" for c in renewals]
        ledger = Counter(session.scalars(select(LocalProviderCharge.idempotency_key).where(
            LocalProviderCharge.idempotency_key.in_(keys))))
        assert ledger == Counter(keys)  # the provider charged each renewal once
        assert set(session.scalars(select(Membership.period_index).where(
            Membership.id.in_(ctx["members"])))) == {1}


def seed_webhooks(db, clock, receiver) -> dict[str, Any]:
    with db.transaction() as session:
        create_endpoint(session, clock=clock, url=receiver.url, event_types=["*"],
                        targets=LOCAL)
    events = []
    for n in range(5):
        with db.transaction() as session:
            events.append(record_event(session, clock=clock, type="order.paid",
                                       subject_type="order", subject_id=n + 1,
                                       payload={"n": n}).event_id)
    return {"events": events}


def webhooks_done(db, ctx) -> bool:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.status == DeliveryStatus.delivered)) == len(ctx["events"])


def check_webhooks(db, ctx, receiver) -> None:
    received = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert set(received) == set(ctx["events"])  # none lost
    twice = [event_id for event_id, n in received.items() if n > 1]
    assert len(twice) <= 1 and all(received[e] == 2 for e in twice)  # only the one in hand
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.requests:
        bodies.setdefault(request.headers["webhook-id"], set()).add(request.body)
    assert all(len(b) == 1 for b in bodies.values())  # a copy is the same event, byte for byte
    # The receiver's side: de-duplicated by webhook-id, each event is handled once.
    handled = [json.loads(body)["id"] for body in
               {r.headers["webhook-id"]: r.body for r in receiver.requests}.values()]
    assert sorted(handled) == sorted(ctx["events"])
    with db.transaction() as session:
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert len(deliveries) == len(ctx["events"])
        assert all(d.status is DeliveryStatus.delivered for d in deliveries)


def seed_windows(db, clock, receiver) -> dict[str, Any]:
    """A hub's day of windows, all past their cutoff; the last two have bookings."""
    make_network(db, clock)
    make_item(db, clock)
    windows = make_windows(db)
    for window_id in windows[-2:]:
        orders = make_orders(db, clock, 3)
        with db.transaction() as session:
            for n, order in enumerate(orders):
                point = R.GeoPoint(HACKNEY.latitude + 0.001 * n, HACKNEY.longitude)
                fulfilment.book_window(session, clock=clock, window_id=window_id,
                                       order_id=order, destination=point, weight_grams=1_000,
                                       label=f"E8 {order}")
    return {"windows": windows}


def windows_done(db, ctx) -> bool:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(DeliveryWindow).where(
            DeliveryWindow.status == WindowStatus.planned)) == len(ctx["windows"])


def check_windows(db, ctx, receiver) -> None:
    with db.transaction() as session:
        plans = Counter(session.scalars(select(RoutePlanRow.window_id)))
        assert plans == Counter(ctx["windows"])  # one stored plan per window
        planned = Counter(map(int, session.scalars(select(DomainEvent.subject_id).where(
            DomainEvent.type == "delivery_window.planned"))))
        assert planned == Counter(ctx["windows"])  # and one "planned" event


class DiesAfterCharging:
    """The local provider, but the shop's process "dies" as soon as the charge is made."""

    def __init__(self, provider: LocalCardProvider) -> None:
        self.provider, self.name = provider, provider.name

    def charge(self, **request):
        self.provider.charge(**request)
        raise Stranded


class Stranded(BaseException):
    """Nothing after the charge runs (not an Exception: no handler of the flow catches it)."""


def seed_stranded_payments(db, clock, receiver, settings) -> dict[str, Any]:
    """Three drop orders charged a minute ago whose settlement never ran."""
    then = FrozenClock(real_now() - timedelta(minutes=1))
    world = make_drop(db, then, cap=6, limit=2)
    customers = []
    for _ in range(3):
        shopper = make_shopper(db, then)
        customers.append(shopper.customer_id)
        with pytest.raises(Stranded):
            drop_flows.purchase(
                db, clock=then, settings=settings,
                provider=DiesAfterCharging(LocalCardProvider(db.sessions, then)),
                drop_id=world.drop_id, shopper=shopper,
                lines=[HoldLine(world.variant_ids[0], 2)], admission_token=None, card=CARD,
                shipping_address=ADDRESS, checkout_reference=f"ref-{uuid.uuid4().hex}")
    with db.transaction() as session:
        orders = list(session.scalars(select(Order.id)))
        assert session.scalar(select(func.count()).select_from(Payment).where(
            Payment.status == PaymentStatus.pending)) == 3
    return {"drop": world.drop_id, "orders": orders, "customers": customers}


def payments_done(db, ctx) -> bool:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Order).where(
            Order.status == OrderStatus.paid)) == len(ctx["orders"])


def check_payments(db, ctx, receiver) -> None:
    with db.transaction() as session:
        payments = session.scalars(select(Payment)).all()
        assert sorted(p.order_id for p in payments) == sorted(ctx["orders"])
        assert all(p.status is PaymentStatus.succeeded for p in payments)
        ledger = Counter(session.scalars(select(LocalProviderCharge.idempotency_key)))
        assert ledger == Counter(p.idempotency_key for p in payments)  # never charged again
        paid = Counter(map(int, session.scalars(select(DomainEvent.subject_id).where(
            DomainEvent.type == "order.paid"))))
        assert paid == Counter(ctx["orders"])  # each order paid once
        assert session.scalar(select(func.sum(DropSlot.remaining)).where(
            DropSlot.drop_id == ctx["drop"])) == 0  # 6 units, 2 to each of 3 orders
        units = {b.customer_id: b.units for b in session.scalars(
            select(DropBuyer).where(DropBuyer.drop_id == ctx["drop"]))}
        assert units == dict.fromkeys(ctx["customers"], 2)


@dataclass(frozen=True)
class Job:
    failpoint: str
    seed: Callable[..., dict[str, Any]]
    done: Callable[[Any, dict[str, Any]], bool]
    check: Callable[..., None]


JOBS = {
    "renewals": Job(AFTER_RENEWAL_CHARGE, seed_renewals, renewals_done, check_renewals),
    "webhook deliveries": Job(AFTER_SEND, seed_webhooks, webhooks_done, check_webhooks),
    "window cutoffs and route planning": Job(AFTER_SOLVE, seed_windows, windows_done,
                                             check_windows),
    "payment recovery": Job(AFTER_LOOKUP, seed_stranded_payments, payments_done,
                            check_payments),
}


@pytest.mark.parametrize("job", JOBS.values(), ids=list(JOBS))
def test_each_due_job_runs_once_though_a_worker_dies_in_the_middle(
        db, clock, settings, database_url, tmp_path, job):
    with workers(database_url, tmp_path) as crew:
        receiver = crew.receiver
        if job is JOBS["payment recovery"]:
            ctx = job.seed(db, clock, receiver, settings)
        else:
            ctx = job.seed(db, clock, receiver)
        first, log = crew.start("killed", failpoint=job.failpoint)
        try:
            wait_for(lambda: f"failpoint {job.failpoint} reached" in log.read_text(),
                     what=f"the first worker to reach {job.failpoint}", seconds=120,
                     alive=first)
            assert not job.done(db, ctx)  # killed with work in hand
        finally:
            kill(first)
        survivors = [crew.start(f"survivor-{n}")[0] for n in (1, 2)]
        try:
            wait_for(lambda: job.done(db, ctx), what="the survivors to finish the work",
                     seconds=180)
        finally:
            for process in survivors:
                kill(process, signal.SIGTERM)
        # One more whole pass: whatever was still claimable would be done a second time here.
        last, last_log = crew.start("last", once=True)
        assert last.wait(timeout=180) == 0, last_log.read_text()[-3000:]
        job.check(db, ctx, receiver)


def test_a_job_lock_is_held_by_one_process_at_a_time_and_goes_with_it(db, database_url):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from dropline.db import Database, exclusive_job\n"
         f"db = Database({database_url!r})\n"
         "with exclusive_job(db, 'fulfilment') as mine:\n"
         "    print('held' if mine else 'refused', flush=True)\n"
         "    sys.stdin.read()  # holds the lock until killed\n"],
        env={**os.environ, "PYTHONPATH": str(SRC)}, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with exclusive_job(db, "fulfilment") as mine, exclusive_job(db, "memberships") as other:
            assert (mine, other) == (False, True)  # the same job refused, another one free
    finally:
        kill(holder)
    # SIGKILL: the server ends the holder's session and its lock with it.
    wait_for(lambda: _free(db, "fulfilment"), what="the dead holder's lock to go", seconds=30)
    with exclusive_job(db, "fulfilment") as mine:
        assert mine
        with exclusive_job(db, "fulfilment") as again:  # another connection, even here
            assert not again


def _free(db, name: str) -> bool:
    with exclusive_job(db, name) as mine:
        return mine
