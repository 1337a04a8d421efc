"""``dropline drops ...``: the same services as the admin API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.table import Table

from dropline.cli_support import services
from dropline.db import Database
from dropline.drops import service, stories
from dropline.drops.crowd.gate import DEFAULT_PREFIX, SyncGate
from dropline.drops.crowd.gate import reconcile as rebuild
from dropline.errors import DomainError, InvalidInput
from dropline.orders.jobs import RECOVERY_GRACE_SECONDS
from dropline.payments.cli import print_recovered, run_recovery
from dropline.planning.drop_report import drop_report

drops_app = typer.Typer(
    help="Micro-drops: create, schedule, watch and report on capped releases.\n\n"
         "A drop opens at --starts-at (members with early access up to --early-access minutes "
         "sooner), admits --rate shoppers a minute from its waiting room, and sells at most "
         "its cap, at most --limit per person.",
    no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _db() -> Database:
    return services().db


def _when(text: str) -> datetime:
    """ISO 8601 (UTC if no offset), or "+30m" / "+2h" / "+1d" from now."""
    now = datetime.now(UTC)
    if text.startswith("+") and text[-1:] in "mhd" and text[1:-1].isdigit():
        unit = {"m": "minutes", "h": "hours", "d": "days"}[text[-1]]
        return now + timedelta(**{unit: int(text[1:-1])})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"not a time: {text!r} (use ISO 8601 or +30m / +2h / +1d)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _fail(exc: DomainError) -> None:
    err.print(f"[bold red]error:[/] {exc.detail}")
    raise typer.Exit(2)


def _show(session, drop) -> None:  # type: ignore[no-untyped-def]
    clock = services().clock
    variants = service.drop_variants(session, drop.id)
    table = Table(title=f"drop {drop.id}: {drop.name}", show_header=False)
    rows = {
        "slug": drop.slug, "state": service.state_of(session, clock=clock, drop=drop).value,
        "cap": service.cap_of(drop, variants),
        "remaining": sum(service.remaining_by_pool(session, drop.id).values()),
        "per person": drop.per_person_limit, "starts": drop.starts_at.isoformat(),
        "ends": drop.ends_at.isoformat(), "early access (min)": drop.early_access_minutes,
        "admission / min": drop.admission_per_minute, "queue": drop.queue_enabled,
        "hold ttl (s)": drop.hold_ttl_seconds,
        "variants": ", ".join(f"{v.variant_id}" + (f" (cap {v.cap})" if v.cap is not None
                                                    else "") for v in variants),
    }
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)


@drops_app.command("create", epilog="Example: dropline drops create midnight-fig "
                   "--name 'Midnight Fig' --variant 12 --variant 13 --cap 500 --limit 2 "
                   "--starts-at 2026-04-01T18:00Z --ends-at +2d --early-access 30 --rate 600")
def create(
    slug: Annotated[str, typer.Argument(help="URL name, e.g. midnight-fig.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    variant: Annotated[list[str], typer.Option(
        help="Variant id, or id:cap for its own cap (repeat).")],
    starts_at: Annotated[str, typer.Option(help="Public start: ISO 8601 or +30m.")],
    ends_at: Annotated[str, typer.Option(help="End: ISO 8601 or +2d.")],
    cap: Annotated[int, typer.Option(min=0, help="Units shared by uncapped variants.")] = 0,
    limit: Annotated[int, typer.Option(min=1, help="Units per person.")] = 2,
    early_access: Annotated[int, typer.Option(min=0, help="Longest member lead, minutes.")] = 0,
    rate: Annotated[int, typer.Option(min=1, help="Shoppers admitted per minute.")] = 600,
    queue: Annotated[bool, typer.Option("--queue/--no-queue",
                                        help="Waiting room with admission tokens.")] = True,
    hold_ttl: Annotated[int, typer.Option(min=10, help="Seconds a hold lasts.")] = 600,
    slots: Annotated[int, typer.Option(min=1, max=256, help="Rows the units are split over.")]
    = 32,
    location: Annotated[str | None, typer.Option(help="Ships from this location code.")] = None,
) -> None:
    """Create and schedule a drop."""
    try:
        variants = []
        for item in variant:
            vid, _, vcap = item.partition(":")
            if not vid.isdigit() or (vcap and not vcap.isdigit()):
                raise InvalidInput(f"--variant takes an id or id:cap, not {item!r}")
            variants.append(service.VariantCap(int(vid), int(vcap) if vcap else None))
        with _db().transaction() as session:
            drop = service.create_drop(
                session, clock=services().clock, slug=slug, name=name, variants=variants,
                shared_cap=cap, per_person_limit=limit, slots=slots, location_code=location,
                schedule=service.DropSchedule(
                    starts_at=_when(starts_at), ends_at=_when(ends_at),
                    early_access_minutes=early_access, admission_per_minute=rate,
                    queue_enabled=queue, hold_ttl_seconds=hold_ttl),
                actor="cli")
            _show(session, drop)
    except DomainError as exc:
        _fail(exc)


@drops_app.command("list", epilog="Example: dropline drops list")
def list_() -> None:
    """Every drop with its state and units left."""
    clock = services().clock
    table = Table("id", "slug", "state", "remaining", "starts", "ends")
    with _db().transaction() as session:
        for drop in service.list_drops(session):
            table.add_row(str(drop.id), drop.slug,
                          service.state_of(session, clock=clock, drop=drop).value,
                          str(sum(service.remaining_by_pool(session, drop.id).values())),
                          drop.starts_at.isoformat(), drop.ends_at.isoformat())
    console.print(table)


@drops_app.command("show", epilog="Example: dropline drops show midnight-fig")
def show(drop: Annotated[str, typer.Argument(help="Slug or id.")]) -> None:
    """One drop: schedule, state, units left (run it again to watch a drop live)."""
    try:
        with _db().transaction() as session:
            _show(session, service.find_drop(session, drop))
    except DomainError as exc:
        _fail(exc)


@drops_app.command("schedule", epilog="Example: dropline drops schedule midnight-fig "
                   "--starts-at +1h --ends-at +1d --early-access 30 --rate 300")
def schedule(
    drop: Annotated[str, typer.Argument(help="Slug or id.")],
    starts_at: Annotated[str, typer.Option(help="Public start: ISO 8601 or +30m.")],
    ends_at: Annotated[str, typer.Option(help="End: ISO 8601 or +2d.")],
    early_access: Annotated[int, typer.Option(min=0, help="Longest member lead, minutes.")] = 0,
    rate: Annotated[int, typer.Option(min=1, help="Shoppers admitted per minute.")] = 600,
    queue: Annotated[bool, typer.Option("--queue/--no-queue")] = True,
    hold_ttl: Annotated[int, typer.Option(min=10, help="Seconds a hold lasts.")] = 600,
) -> None:
    """Move a drop's times, early access, admission rate or queue."""
    try:
        with _db().transaction() as session:
            found = service.find_drop(session, drop)
            service.reschedule_drop(session, clock=services().clock, drop=found, actor="cli",
                                    schedule=service.DropSchedule(
                                        starts_at=_when(starts_at), ends_at=_when(ends_at),
                                        early_access_minutes=early_access,
                                        admission_per_minute=rate, queue_enabled=queue,
                                        hold_ttl_seconds=hold_ttl,
                                        offer_ttl_seconds=found.offer_ttl_seconds))
            _show(session, found)
    except DomainError as exc:
        _fail(exc)
    _refresh_gate(drop)


@drops_app.command("restock", epilog="Example: dropline drops restock midnight-fig --units 50")
def restock(
    drop: Annotated[str, typer.Argument(help="Slug or id.")],
    units: Annotated[int, typer.Option(min=1, help="Units to add to the cap.")],
    variant: Annotated[int | None, typer.Option(help="A capped variant's id.")] = None,
) -> None:
    """Raise a cap; the new units are offered to the waitlist first."""
    try:
        with _db().transaction() as session:
            found = service.find_drop(session, drop)
            offers = service.restock_drop(session, clock=services().clock, drop=found,
                                          units=units, variant_id=variant, actor="cli")
            console.print(f"{units} units added; {offers} waitlist offers made")
    except DomainError as exc:
        _fail(exc)
    _refresh_gate(drop)


@drops_app.command("reclaim", epilog="Example: dropline drops reclaim midnight-fig")
def reclaim(drop: Annotated[str, typer.Argument(help="Slug or id.")]) -> None:
    """Return lapsed holds' units now (the worker does this on its own too)."""
    try:
        with _db().transaction() as session:
            left = service.reclaim_and_offer(session, clock=services().clock,
                                             drop=service.find_drop(session, drop))
            console.print(f"{left} units left to hold")
    except DomainError as exc:
        _fail(exc)


def _sync_gate():  # type: ignore[no-untyped-def]
    """The Redis gate when ``DROPLINE_REDIS_URL`` is set and the database is PostgreSQL."""
    settings = services().settings
    if not settings.redis.url or settings.database.is_sqlite:
        return None
    return SyncGate(redis.Redis.from_url(settings.redis.url, socket_timeout=5),
                    prefix=DEFAULT_PREFIX)


def _refresh_gate(drop: str) -> None:
    """After a change committed here, the drop's Redis state is rebuilt from the database."""
    gate = _sync_gate()
    if gate is None:
        return
    db = _db()
    with db.transaction() as session:
        drop_id = service.find_drop(session, drop).id
    rebuild(db, gate, clock=services().clock, drop_id=drop_id)


@drops_app.command("reconcile", epilog="Example: dropline drops reconcile midnight-fig")
def reconcile(
    drop: Annotated[str, typer.Argument(help="Slug or id.")],
    grace: Annotated[int, typer.Option(
        min=0, help="Settle only payments pending for at least this many seconds.")
    ] = RECOVERY_GRACE_SECONDS,
) -> None:
    """Finish what crashed workers left of a drop: its orders charged (or declined) at the
    provider but never settled are settled (``dropline payments reconcile``, for this drop's
    orders), then, with DROPLINE_REDIS_URL on PostgreSQL, the drop's Redis gate state (units
    left, buyers' counts, active holds, tokens used, live purchase leases) is rebuilt from the
    database, the source of truth. Safe to run any number of times."""
    try:
        db = _db()
        with db.transaction() as session:
            drop_id = service.find_drop(session, drop).id
            orders = service.orders_of_drop(session, drop_id)
        print_recovered(run_recovery(grace_seconds=grace, order_ids=orders))
        gate = _sync_gate()
        if gate is None:
            console.print("no Redis gate (DROPLINE_REDIS_URL unset, or SQLite): nothing to "
                          "rebuild")
            return
        figures = rebuild(db, gate, clock=services().clock, drop_id=drop_id)
    except DomainError as exc:
        _fail(exc)
    console.print(f"drop {drop_id}: {figures['left']} units left, {figures['buyers']} buyers, "
                  f"{figures['holds']} active holds now in Redis")


@drops_app.command("prewarm", epilog="Example: dropline drops prewarm midnight-fig "
                   "--base-url https://shop.example")
def prewarm(
    drop: Annotated[str, typer.Argument(help="Slug or id.")],
    base_url: Annotated[str | None, typer.Option(
        help="Also GET each page through this edge (CDN or the server) to fill its cache.")
    ] = None,
) -> None:
    """Renders a drop's public pages (drop page, its product pages, home) before launch and
    prints what it warmed: path, bytes, ETag, render ms (and the edge's answer)."""
    # Here, not at the top: it loads the web stack (templates, pages), which only this
    # command of the drops CLI needs.
    from dropline.web.prewarm import prewarm_drop, print_warmed

    try:
        with console.status("warming pages…") as status:
            rows = prewarm_drop(_db(), clock=services().clock, settings=services().settings,
                                drop_ref=drop, base_url=base_url,
                                progress=lambda path: status.update(f"warming {path}…"))
    except DomainError as exc:
        _fail(exc)
    print_warmed(console, rows)


@drops_app.command("report", epilog="Example: dropline drops report midnight-fig --json")
def report(
    drop: Annotated[str, typer.Argument(help="Slug or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Sell-through, time to sell out, waiting-room conversion, holds expired, payment
    failures, bot flags and orders that bypassed the queue."""
    try:
        with _db().transaction() as session:
            data = drop_report(session, clock=services().clock,
                               drop=service.find_drop(session, drop)).as_dict()
    except DomainError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(data))
        return
    table = Table(title=f"drop report: {data['slug']}", show_header=False)
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)


@drops_app.command("story", epilog="Example: dropline drops story midnight-fig --file "
                                    "story.md --note 12='Only 40 bottles this year.'")
def story(
    drop: Annotated[str, typer.Argument(help="Slug or id.")],
    file: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, readable=True,
                                              help="The story, in Markdown.")] = None,
    note: Annotated[list[str] | None, typer.Option(
        help="VARIANT_ID=TEXT: a note shown beside that variant (repeatable).")] = None,
) -> None:
    """Set a drop's story (Markdown, shown sanitised on the drop page) and variant notes."""
    try:
        notes = {}
        for item in note or []:
            variant, sep, text = item.partition("=")
            if not sep or not variant.strip().isdigit():
                raise InvalidInput(f"a note is VARIANT_ID=TEXT, not {item!r}")
            notes[int(variant)] = text
        with _db().transaction() as session:
            found = service.find_drop(session, drop)
            stories.set_story(session, clock=services().clock, drop_id=found.id,
                              story=file.read_text(encoding="utf-8") if file else None,
                              notes=notes)
            console.print(f"drop {found.id}: story of {len(found.story)} characters, "
                          f"{len(notes)} note(s) set")
    except DomainError as exc:
        _fail(exc)
