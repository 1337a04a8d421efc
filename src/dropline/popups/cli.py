"""``dropline popups``: plan, stock, open and close pop-ups, request 48-hour restocks, the
conversion report, the local inventory feed, and A/B experiments; the same services as the
API and the console."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.catalog.models import Variant
from dropline.cli_support import command_transaction, services
from dropline.errors import InvalidInput, NotFound
from dropline.popups import experiments, listings, service

console = Console()
err = Console(stderr=True)
popups_app = typer.Typer(help="Pop-up shops, local listings and experiments.",
                         no_args_is_help=True)




def _quantities(session: Session, pairs: list[str]) -> dict[int, int]:
    """``SKU=3`` pairs -> {variant id: 3}."""
    out: dict[int, int] = {}
    for pair in pairs:
        sku, _, number = pair.partition("=")
        if not number.isdigit():
            raise InvalidInput(f"{pair!r}: write SKU=QUANTITY, e.g. EF-FIG-50=6")
        variant_id = session.scalar(select(Variant.id).where(Variant.sku == sku.strip()))
        if variant_id is None:
            raise NotFound(f"no variant with SKU {sku!r}")
        out[variant_id] = out.get(variant_id, 0) + int(number)
    return out


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("use ISO 8601 with a UTC offset, e.g. 2026-12-05T10:00+00:00")
    if value.tzinfo is None:
        raise typer.BadParameter("give a UTC offset, e.g. 2026-12-05T10:00+00:00")
    return value


@popups_app.command("create", epilog="Example: dropline popups create popup-borough --hub "
                    "central --opens 2026-12-05T10:00+00:00 --closes 2026-12-07T18:00+00:00")
def create(code: str, hub: Annotated[str, typer.Option(help="hub or warehouse code")],
           opens: Annotated[str, typer.Option(help="opening time, ISO 8601 with offset")],
           closes: Annotated[str, typer.Option(help="closing time, ISO 8601 with offset")],
           name: Annotated[str, typer.Option(help="name, when the location is new")] = "",
           address: Annotated[str, typer.Option(help="street address, when new")] = "",
           lat: Annotated[float | None, typer.Option(help="latitude, when new")] = None,
           lon: Annotated[float | None, typer.Option(help="longitude, when new")] = None) -> None:
    """Plan a pop-up at a pop-up location (created when --name is given and it is new)."""
    with command_transaction() as session:
        popup = service.plan_popup(session, clock=services().clock, code=code, hub_code=hub,
                                   opens_at=_when(opens), closes_at=_when(closes), name=name,
                                   address=address, latitude=lat, longitude=lon)
        console.print(f"planned pop-up {code} (id {popup.id}); stock it with "
                      f"`dropline popups transfer {code} SKU=QTY`")


@popups_app.command("open", epilog="Example: dropline popups open popup-borough")
def open_(code: str) -> None:
    """Open a planned pop-up: the counter starts selling."""
    with command_transaction() as session:
        service.open_popup(session, clock=services().clock, code=code)
    console.print(f"{code} is open; counter: /counter/{code}")


@popups_app.command("transfer", epilog="Example: dropline popups transfer popup-borough "
                    "EF-FIG-50=6 EF-C-FIG-220=10")
def transfer(code: str, lines: Annotated[list[str], typer.Argument(help="SKU=QTY pairs")],
             lead_hours: Annotated[float, typer.Option(help="0: lands at once")] = 0.0) -> None:
    """Transfer stock from the pop-up's hub (stock movement records)."""
    with command_transaction() as session:
        moved = service.transfer_in(session, clock=services().clock, code=code,
                                    quantities=_quantities(session, lines),
                                    lead_hours=lead_hours)
    console.print(f"{len(moved)} transfer(s), {sum(m.quantity for m in moved)} units to {code}")


@popups_app.command("restock", epilog="Example: dropline popups restock popup-borough "
                    "--factory factory-bermondsey EF-FIG-50=12")
def restock(code: str, lines: Annotated[list[str], typer.Argument(help="SKU=QTY pairs")],
            factory: Annotated[str, typer.Option(help="micro-factory code")],
            lead_hours: Annotated[float, typer.Option(help="production lead time")] = 48.0
            ) -> None:
    """Request a production run from a micro-factory, delivered to the pop-up (48 h)."""
    with command_transaction() as session:
        runs = service.request_restock(session, clock=services().clock, code=code,
                                       factory_code=factory,
                                       quantities=_quantities(session, lines),
                                       lead_hours=lead_hours)
    for run in runs:
        console.print(f"production run {run.id}: {run.quantity} units due {run.due_at:%Y-%m-%d %H:%M} UTC")


@popups_app.command("close", epilog="Example: dropline popups close popup-borough "
                    "EF-FIG-50=2 EF-C-FIG-220=0")
def close(code: str,
          counts: Annotated[list[str] | None, typer.Argument(help="SKU=COUNTED pairs; "
                                                                "a SKU not named counts 0")] = None
          ) -> None:
    """Close with a count: reconciliation (expected vs counted) and stock back to the hub."""
    with command_transaction() as session:
        report = service.close_popup(session, clock=services().clock, code=code,
                                     counted=_quantities(session, counts or []))
        table = Table(box=box.SIMPLE_HEAD)
        for column in ("sku", "expected", "counted", "variance"):
            table.add_column(column, justify="left" if column == "sku" else "right")
        for line in report.lines:
            table.add_row(line.sku, str(line.expected), str(line.counted), f"{line.variance:+d}")
        console.print(table)
    console.print(f"variance {report.variance_units:+d} units; {report.transferred_back} units "
                  "on their way back to the hub")


@popups_app.command("report", epilog="Example: dropline popups report --days 30 --json")
def report(days: Annotated[int, typer.Option(min=1, max=365, help="conversion window")] = 30,
           as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Sales and pop-up-to-member conversion per pop-up (95% Wilson interval)."""
    with command_transaction() as session:
        rows = service.conversion_report(session, within_days=days)
    if as_json:
        typer.echo(json.dumps([{"code": r.code, "sales": r.sales, "buyers": r.buyers,
                                "members": r.members, "rate": round(r.rate, 4),
                                "low": round(r.interval.low, 4),
                                "high": round(r.interval.high, 4)} for r in rows], indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("pop-up", "status", "sales", "buyers", "members", "conversion"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.code, r.status, str(r.sales), str(r.buyers), str(r.members),
                      f"{r.rate:.1%} ({r.interval.low:.1%}–{r.interval.high:.1%})")
    console.print(table)


@popups_app.command("feed", epilog="Example: dropline popups feed --format tsv --output "
                    "var/feeds/local-inventory.tsv")
def feed(fmt: Annotated[str, typer.Option("--format", help="tsv or json")] = "tsv",
         output: Annotated[Path | None, typer.Option(help="file to write (else stdout)")] = None
         ) -> None:
    """The local inventory feed (store_code, id, availability, quantity, price)."""
    if fmt not in ("tsv", "json"):
        raise typer.BadParameter("--format is tsv or json")
    with console.status("building the feed…"), command_transaction() as session:
        version = listings.stock_version(session)
        rows = listings.feed_rows(session)
    text = listings.feed_tsv(rows) if fmt == "tsv" else json.dumps(
        listings.feed_json(rows), indent=1)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(output)  # a listing service polling the file never reads half of it
    err.print(f"wrote {len(rows)} rows to {output} (stock version {version})")


@popups_app.command("experiment-start", epilog='Example: dropline popups experiment-start '
                    'fig-headline --name "Fig headline" --page product --target '
                    'fig-leaf-eau-de-parfum --variant "a=Fig Leaf" --variant "b=Green fig, '
                    'warm cedar"')
def experiment_start(slug: str, name: Annotated[str, typer.Option()],
                     page: Annotated[str, typer.Option(help="product or drop")],
                     variant: Annotated[list[str], typer.Option(help="KEY=headline; the first "
                                                                     "is the control")],
                     target: Annotated[str, typer.Option(help="page slug; empty: all")] = ""
                     ) -> None:
    """Start an A/B test on product or drop pages."""
    variants = []
    for item in variant:
        key, _, headline = item.partition("=")
        variants.append({"key": key.strip(), "headline": headline.strip(), "label": key})
    with command_transaction() as session:
        experiments.create_experiment(session, clock=services().clock, slug=slug, name=name,
                                      page_kind=page, target=target, variants=variants)
    console.print(f"experiment {slug} running on {page} pages")


@popups_app.command("experiment-report", epilog="Example: dropline popups experiment-report "
                    "fig-headline")
def experiment_report(slug: str) -> None:
    """Exposures, conversions, rate and difference vs control with 95% intervals."""
    with command_transaction() as session:
        result = experiments.experiment_report(session, slug=slug)
    table = Table(box=box.SIMPLE_HEAD, title=f"{result.name} ({result.status})")
    for column in ("variant", "exposed", "converted", "rate (95% CI)", "vs control (95% CI)"):
        table.add_column(column)
    for arm in result.arms:
        lift = (f"{arm.lift.low * 100:+.1f} to {arm.lift.high * 100:+.1f} pts" if arm.lift
                else "control")
        table.add_row(arm.variant, str(arm.exposures), str(arm.conversions),
                      f"{arm.rate:.1%} ({arm.interval.low:.1%}–{arm.interval.high:.1%})", lift)
    console.print(table)
