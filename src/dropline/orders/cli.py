"""``dropline orders``: the order lifecycle from the command line (advance, allocate, ship,
deliver, cancel, change the address), pick lists, packing slips and labels; the same services
and flows as the admin API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from dropline.audit import acting_as
from dropline.cli_support import readable_errors, services
from dropline.db import Database
from dropline.errors import InvalidInput
from dropline.invoices import documents as invoice_documents
from dropline.invoices import service as invoices
from dropline.orders import documents, flows, lifecycle, service, shipments
from dropline.orders.rules import OrderStage
from dropline.orders.schemas import AddressIn

console = Console()
orders_app = typer.Typer(help="Orders through their lifecycle: paid -> allocated -> picking -> "
                              "packed -> shipped -> delivered; cancel before packing.",
                         no_args_is_help=True)
ACTOR = "cli"


@contextmanager
def _db() -> Iterator[Database]:
    with readable_errors(), acting_as(ACTOR):
        yield services().db


def _pairs(pairs: list[str], example: str) -> dict[int, str]:
    """``12=value`` pairs -> {12: "value"}."""
    out: dict[int, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key.strip().isdigit() or not value.strip():
            raise InvalidInput(f"{pair!r}: write LINE=VALUE, e.g. {example}")
        out[int(key)] = value.strip()
    return out


def _show(db: Database, order_id: int) -> None:
    with db.transaction() as session:
        order = service.get_order(session, order_id)
        views = shipments.order_shipments(session, order_id)
        timeline = service.order_timeline(session, order_id)
        table = Table(title=f"order {order.id}: {order.stage.value} ({order.status.value})")
        for column in ("shipment", "from", "status", "carrier", "tracking", "units"):
            table.add_column(column)
        for view in views:
            s = view.shipment
            table.add_row(str(s.id), view.location_code, s.status.value, s.carrier,
                          s.tracking_number or "", str(view.units))
    console.print(table)
    for entry in timeline:
        console.print(f"  {entry.at:%Y-%m-%d %H:%M} {entry.label}")


@orders_app.command("show", epilog="Example: dropline orders show 1042")
def show(order_id: int) -> None:
    """An order's stage, shipments with tracking, and timeline."""
    with _db() as db:
        _show(db, order_id)


@orders_app.command("list", epilog="Example: dropline orders list --stage packed")
def list_(stage: Annotated[OrderStage | None, typer.Option(help="only orders at this stage")]
          = None,
          limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """Recent orders, newest first."""
    with _db() as db, db.transaction() as session:
        query = service.list_orders(session, stage=stage, limit=limit)
        table = Table()
        for column in ("order", "stage", "payment", "total", "placed"):
            table.add_column(column)
        for order in query:
            table.add_row(str(order.id), order.stage.value, order.status.value,
                          str(order.total_amount), f"{order.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@orders_app.command("advance", epilog="Example: dropline orders advance 1042  "
                    "(paid -> allocated -> picking -> packed, one step each run)")
def advance(order_id: int) -> None:
    """Move an order one step: allocate it, start picking, or pack it."""
    with _db() as db:
        with db.transaction() as session:
            shipments.advance(session, clock=services().clock,
                              order=service.get_order(session, order_id))
        _show(db, order_id)


@orders_app.command("allocate", epilog="Example: dropline orders allocate 1042 "
                    "--move 7=hub-east  (line 7 ships from hub-east)")
def allocate(order_id: int,
             move: Annotated[list[str] | None, typer.Option(
                 help="LINE=LOCATION: take this order line from another location")] = None
             ) -> None:
    """Allocate a paid order: one shipment per location its lines ship from."""
    with _db() as db:
        with db.transaction() as session:
            shipments.allocate(session, clock=services().clock,
                               order=service.get_order(session, order_id),
                               moves=_pairs(move or [], "7=hub-east"))
        _show(db, order_id)


@orders_app.command("ship", epilog="Example: dropline orders ship 1042 --carrier manual "
                    "--tracking RM123456785GB")
def ship(order_id: int,
         carrier: Annotated[str, typer.Option(help="carrier name (see the shipping docs)")]
         = "manual",
         tracking: Annotated[str | None, typer.Option(
             help="tracking number (manual carrier; none: a local reference)")] = None,
         shipment: Annotated[int | None, typer.Option(
             help="the shipment, when the order has several")] = None,
         service_level: Annotated[str, typer.Option("--service", help="carrier service")]
         = "") -> None:
    """Ship a packed order's parcel; with its last parcel the order is shipped and the
    shopper is mailed the tracking."""
    with _db() as db:
        flows.ship_order(db, clock=services().clock, carriers=services().carriers,
                         order_id=order_id, carrier=carrier, tracking_number=tracking,
                         service=service_level, shipment_id=shipment)
        _show(db, order_id)


OUTCOMES = {"delivered": "delivered", "failed": "delivery_failed", "returned": "returned"}


@orders_app.command("deliver", epilog="Example: dropline orders deliver 1042  "
                    "(or --outcome failed, --outcome returned)")
def deliver(order_id: int,
            outcome: Annotated[str, typer.Option(
                help="delivered, failed (a failed attempt: ship again) or returned (to "
                     "sender)")] = "delivered",
            note: Annotated[str, typer.Option(help="what the carrier said")] = "") -> None:
    """Record what happened to a shipped order's parcels."""
    if outcome not in OUTCOMES:
        raise typer.BadParameter("delivered, failed or returned", param_hint="--outcome")
    with _db() as db:
        with db.transaction() as session:
            shipments.settle_delivery(session, clock=services().clock,
                                      order=service.get_order(session, order_id),
                                      outcome=OUTCOMES[outcome], note=note[:300])
        _show(db, order_id)


@orders_app.command("cancel", epilog="Example: dropline orders cancel 1042 --reason "
                    "\"customer asked\"  (some units: --line 7=1)")
def cancel(order_id: int,
           reason: Annotated[str, typer.Option(help="why (shown to the shopper)")] = "",
           line: Annotated[list[str] | None, typer.Option(
               help="LINE=UNITS: cancel only these units of this order line")] = None) -> None:
    """Cancel an order before packing, whole or some units: stock back, money back."""
    with _db() as db:
        quantities = None
        if line:
            quantities = {}
            for line_id, units in _pairs(line, "7=1").items():
                if not units.isdigit() or int(units) < 1:
                    raise InvalidInput(f"line {line_id}: units is a whole number from 1")
                quantities[line_id] = int(units)
        done = flows.cancel_order(db, clock=services().clock, provider=services().payments,
                                  policy=services().checkout,
                                  credit_notes=services().credit_notes, order_id=order_id,
                                  reason=reason[:300], actor=ACTOR, lines=quantities)
        console.print(f"refunded {done.refund_amount} (refund {done.refund_id})")
        _show(db, order_id)


@orders_app.command("address", epilog="Example: dropline orders address 1042 --name \"Ada "
                    "Lovelace\" --line1 \"2 Elder St\" --city London --postcode \"E1 6BT\"")
def address(order_id: int, name: Annotated[str, typer.Option()],
            line1: Annotated[str, typer.Option()], city: Annotated[str, typer.Option()],
            postcode: Annotated[str, typer.Option()],
            line2: Annotated[str, typer.Option()] = "",
            country: Annotated[str, typer.Option()] = "GB") -> None:
    """Change an order's shipping address before it is packed."""
    # The API's address schema checks the fields, so the CLI refuses what the API refuses.
    try:
        checked = AddressIn(name=name, line1=line1, line2=line2, city=city,
                            postcode=postcode, country=country)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc.errors()[0]["msg"])) from None
    with _db() as db:
        with db.transaction() as session:
            lifecycle.change_address(session, clock=services().clock,
                                     order=service.get_order(session, order_id),
                                     address=checked.model_dump())
        console.print(f"order {order_id} ships to {checked.postcode}")


@orders_app.command("pick-list", epilog="Example: dropline orders pick-list central "
                    "--day 2026-12-07")
def pick_list(location: str,
              day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (UTC); default today")]
              = None) -> None:
    """What to pick at a location for the orders allocated there on a day."""
    try:
        when = date.fromisoformat(day) if day else None
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD, e.g. 2026-12-07", param_hint="--day")
    with _db() as db, db.transaction() as session:
        rows = shipments.pick_list(session, location_code=location,
                                   day=when or services().clock.now().date())
        table = Table(title=f"pick list: {location}, {when or services().clock.now().date()}")
        for column in ("sku", "item", "units", "orders"):
            table.add_column(column)
        for row in rows:
            table.add_row(row.sku, f"{row.product_name} · {row.variant_name}",
                          str(row.quantity), ", ".join(map(str, row.orders)))
    console.print(table)


@orders_app.command("slip", epilog="Example: dropline orders slip 88 --out slip-88.pdf "
                    "--label label-88.pdf")
def slip(shipment_id: int,
         out: Annotated[Path, typer.Option(help="where to write the packing slip PDF")],
         label: Annotated[Path | None, typer.Option(
             help="also write the 4x6 label PDF here")] = None) -> None:
    """Write a shipment's packing slip (A4) and, optionally, its 4x6 label as PDF."""
    with _db() as db, db.transaction() as session:
        doc = documents.shipment_document(session, shipment_id=shipment_id,
                                          shop_name=services().settings.shop.name)
    out.write_bytes(documents.packing_slip_pdf(doc))
    if label is not None:
        label.write_bytes(documents.label_pdf(doc))
    console.print(f"wrote {out}" + (f" and {label}" if label else ""))


def _seller() -> dict[str, str]:
    shop = services().settings.shop
    return {"name": shop.name, "vat_number": shop.vat_number, "country": shop.country}


@orders_app.command("invoice", epilog="Example: dropline orders invoice 1042 --out "
                    "invoice.pdf   (issued once; run again to print the same invoice)")
def invoice(order_id: int,
            out: Annotated[Path | None, typer.Option(help="write the PDF here")] = None
            ) -> None:
    """Issue a paid order's invoice (numbered without gaps) and write it as PDF."""
    with _db() as db:
        with db.transaction() as session:
            issued = invoices.issue_invoice(session, clock=services().clock,
                                            order_id=order_id, seller=_seller())
            body = invoice_documents.invoice_pdf(
                reference=issued.reference, currency=issued.currency,
                issued_at=issued.issued_at, content=issued.content)
    path = out or Path(f"{issued.reference}.pdf")
    path.write_bytes(body)
    console.print(f"invoice {issued.reference} for order {order_id}: {path}", highlight=False)


@orders_app.command("credit-note", epilog="Example: dropline orders credit-note 77 --out "
                    "credit-note.pdf   (77: the refund's id, from dropline orders show)")
def credit_note(refund_id: int,
                out: Annotated[Path | None, typer.Option(help="write the PDF here")] = None
                ) -> None:
    """Issue a refund's credit note (its VAT reversed in proportion) and write it as PDF."""
    with _db() as db:
        with db.transaction() as session:
            issued = invoices.issue_credit_note(session, clock=services().clock,
                                                refund_id=refund_id, seller=_seller())
            body = invoice_documents.credit_note_pdf(
                reference=issued.reference, currency=issued.currency,
                issued_at=issued.issued_at, content=issued.content)
    path = out or Path(f"{issued.reference}.pdf")
    path.write_bytes(body)
    console.print(f"credit note {issued.reference} for refund {refund_id}: {path}",
                  highlight=False)
