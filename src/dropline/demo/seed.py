"""``seed_demo``: run the registered steps in one transaction and summarise the shop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from dropline.catalog.models import Product, Variant
from dropline.clock import Clock, FrozenClock, SystemClock
from dropline.config import Settings
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.demo.access import ADMIN_EMAIL
from dropline.demo.brand import BRAND_NAME, BRAND_SHORT_NAME
from dropline.demo.steps import (
    DemoContext,
    DemoIds,
    DemoStep,
    PendingEvent,
    ordered,
    registered_steps,
    rng_for,
)
from dropline.errors import InvalidState
from dropline.events.models import DomainEvent
from dropline.events.service import record_event
from dropline.locations.models import Location
from dropline.money import format_money
from dropline.orders.models import Order, OrderStatus

MARKER_EVENT = "demo.seeded"
# Two `dropline demo` runs at once on PostgreSQL: the second waits here, then finds the marker.
# (On SQLite every write transaction already starts with BEGIN IMMEDIATE, which serialises them.)
ADVISORY_LOCK_KEY = 0x64726F706C696E65  # "dropline"
DEMO_NOTE = ("a demo shop with invented customers; the password and token below are for "
             "trying Dropline locally, never for a real shop")
PAID_STATUSES = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)


def seed_demo(
    db: Database,
    *,
    settings: Settings,
    customers: int = 300,
    seed: int = 7,
    console: Console | None = None,
    clock: Clock | None = None,
    steps: Sequence[DemoStep] | None = None,
    media: Any = None,
) -> dict[str, str]:
    """Seed the demo brand into an empty shop, or, if it is seeded already, change nothing.

    ``media`` is the store the pictures are drawn into (the CLI passes the process's); without
    one the pictures step is skipped. Either way returns the summary the CLI prints. History is placed relative to
    ``clock.now()``. Refuses (InvalidState) a database that holds a shop other than the demo.
    """
    clock = clock or SystemClock()
    steps = ordered(steps) if steps is not None else registered_steps()
    started = time.perf_counter()
    with db.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": ADVISORY_LOCK_KEY})
        marker = session.scalar(select(DomainEvent).where(DomainEvent.type == MARKER_EVENT)
                                .order_by(DomainEvent.id).limit(1))
        if marker is not None:
            return _already_seeded(session, marker)
        _refuse_unless_empty(session)
        ctx = DemoContext(session=session, db=db, clock=clock, now=clock.now(),
                          settings=settings, seed=seed, customers=customers, ids=DemoIds(),
                          media=media)
        _run_steps(ctx, steps, console)
        record_event(session, clock=clock, type=MARKER_EVENT, subject_type="shop",
                     subject_id="demo",
                     payload={"brand": BRAND_NAME, "seed": seed, "customers": customers,
                              "steps": [step.name for step in steps]})
        summary = {"status": f"seeded in {time.perf_counter() - started:.1f} s (seed {seed})",
                   "shop": BRAND_NAME, "note": DEMO_NOTE, **_counts(session), **ctx.summary}
    if settings.shop.name != BRAND_SHORT_NAME:
        # The storefront's title is a setting, not data: say how to show the brand's name.
        summary["storefront name"] = f"export DROPLINE_SHOP_NAME='{BRAND_SHORT_NAME}'"
    return summary


def _run_steps(ctx: DemoContext, steps: Sequence[DemoStep], console: Console | None) -> None:
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=console, disable=console is None, transient=True)
    with progress:
        task = progress.add_task(f"Seeding {BRAND_NAME}", total=len(steps) + 1)
        for step in steps:
            progress.update(task, description=step.label)
            begun = time.perf_counter()
            note = step.run(replace(ctx, rng=rng_for(ctx.seed, step.name)))
            if console is not None:
                console.print(f"[green]✓[/] {step.label}: {note or 'done'} "
                              f"[dim]({time.perf_counter() - begun:.2f} s)[/]")
            progress.advance(task)
        progress.update(task, description="Event log")
        begun = time.perf_counter()
        _write_events(ctx.session, ctx.events)
        if console is not None:
            console.print(f"[green]✓[/] Event log: {len(ctx.events):,} events "
                          f"[dim]({time.perf_counter() - begun:.2f} s)[/]")
        progress.advance(task)


def _write_events(session: Session, events: list[PendingEvent]) -> None:
    """Through ``record_event`` (so the outbox sees them too), oldest first, each stamped with
    its own historical time."""
    clock = FrozenClock()
    # sorted() is stable: events at the same instant keep the order the steps queued them in.
    for event in sorted(events, key=lambda e: e.occurred_at):
        clock.current = event.occurred_at
        record_event(session, clock=clock, type=event.type, subject_type=event.subject_type,
                     subject_id=event.subject_id, customer_id=event.customer_id,
                     payload=event.payload)


def _refuse_unless_empty(session: Session) -> None:
    for model, what in ((Product, "products"), (Customer, "customers"), (Order, "orders")):
        if session.scalar(select(model.id).limit(1)) is not None:
            raise InvalidState(
                f"this database already holds {what} that are not the demo's; seed the demo "
                "into an empty database (`dropline demo --reset` drops everything first)")


def _already_seeded(session: Session, marker: DomainEvent) -> dict[str, str]:
    payload: dict[str, Any] = marker.payload
    return {
        "status": (f"already seeded on {marker.occurred_at:%Y-%m-%d %H:%M} UTC (seed "
                   f"{payload.get('seed')}); nothing changed. `dropline demo --reset` starts "
                   "again"),
        "shop": str(payload.get("brand", BRAND_NAME)),
        "note": DEMO_NOTE,
        **_counts(session),
        "admin login": f"{ADMIN_EMAIL} (password as printed on the first run)",
        "api token": ("shown once, on the first run (only its hash is kept); "
                                "`dropline admin token demo --scope '*'` issues another"),
    }


def _counts(session: Session) -> dict[str, str]:
    def count(model: Any) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    paid = (Order.status.in_(PAID_STATUSES),)
    orders, total, refunded, first, last = session.execute(
        select(func.count(), func.coalesce(func.sum(Order.total_amount), 0),
               func.coalesce(func.sum(Order.refunded_amount), 0),
               func.min(Order.created_at), func.max(Order.created_at)).where(*paid)
    ).one()
    # SUM(bigint) is numeric on PostgreSQL (a Decimal in Python): money stays an int here.
    total, refunded = int(total), int(refunded)
    with_refunds = session.scalar(select(func.count()).select_from(Order)
                                  .where(*paid, Order.refunded_amount > 0))
    currency = session.scalar(select(Order.currency).limit(1)) or "GBP"
    return {
        "products": str(count(Product)),
        "variants": str(count(Variant)),
        "locations": str(count(Location)),
        "customers": str(count(Customer)),
        "orders": f"{orders} paid ({with_refunds} of them refunded in part or in full)",
        "revenue": (f"{format_money(total - refunded, currency)} net "
                    f"({format_money(total, currency)} taken, "
                    f"{format_money(refunded, currency)} refunded)"),
        "order dates": f"{first:%Y-%m-%d} to {last:%Y-%m-%d}" if first else "no orders yet",
    }
