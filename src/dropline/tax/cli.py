"""``dropline tax``: VAT rates (the shipped UK and EU-27 table, plus the shop's own rows),
product tax classes, and VAT number checks; the same services the checkout prices with."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dropline.audit import acting_as
from dropline.catalog.models import Product
from dropline.cli_support import command_transaction, readable_errors, services
from dropline.errors import InvalidInput, NotFound
from dropline.tax import service
from dropline.tax.rules import TaxClass

console = Console()
tax_app = typer.Typer(help="VAT: rates by country and date, product tax classes, VAT numbers.",
                      no_args_is_help=True)
rates_app = typer.Typer(help="VAT rates: the shipped UK and EU-27 table and the shop's own.",
                        no_args_is_help=True)
tax_app.add_typer(rates_app, name="rates")


@rates_app.command("list", epilog="Example: dropline tax rates list --country DE")
def list_rates(country: Annotated[str | None, typer.Option(
        help="only this country (ISO 3166 alpha-2)")] = None) -> None:
    """Every rate with the date it took effect; the shop's own rows are marked."""
    with command_transaction() as session:
        own = {(r.country, r.tax_class, r.valid_from) for r in service.rate_rows(session)
               if r not in service.shipped_rates()}
        rows = sorted((r for r in service.rate_rows(session)
                       if country is None or r.country == country.upper()),
                      key=lambda r: (r.country, r.tax_class.value, r.valid_from))
    table = Table()
    for column in ("country", "class", "rate %", "from", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.country, row.tax_class.value, f"{row.rate_bp / 100:g}",
                      row.valid_from.isoformat(),
                      "shop" if (row.country, row.tax_class, row.valid_from) in own
                      else "shipped")
    console.print(table)


@rates_app.command("set", epilog="Example: dropline tax rates set DE standard 19 --from "
                   "2027-01-01   (a new rate from that day; the same day again corrects it)")
def set_rate(country: str, tax_class: TaxClass, rate: str,
             start: Annotated[str, typer.Option("--from", help="the day it takes effect")]
             = "") -> None:
    """Add or correct a rate for a country and class from a day (default: today)."""
    with acting_as("cli"), command_transaction() as session:
        try:
            since = date.fromisoformat(start) if start else services().clock.now().date()
        except ValueError:
            raise InvalidInput("--from: write a day like 2027-01-01") from None
        row = service.set_rate(session, clock=services().clock, country=country,
                               tax_class=tax_class, rate_percent=rate, valid_from=since)
        console.print(f"{row.country} {row.tax_class.value} {row.rate_bp / 100:g} % from "
                      f"{row.valid_from.isoformat()}", highlight=False)


@tax_app.command("class", epilog="Example: dropline tax class 12 reduced")
def set_class(product_id: int, tax_class: TaxClass) -> None:
    """Set a product's tax class (standard, reduced, zero or exempt)."""
    with acting_as("cli"), command_transaction() as session:
        if session.get(Product, product_id) is None:
            raise NotFound(f"product {product_id} not found")
        service.set_tax_class(session, product_id=product_id, tax_class=tax_class)
        console.print(f"product {product_id}: {tax_class.value}", highlight=False)


@tax_app.command("check-vat", epilog="Example: dropline tax check-vat DE136695976")
def check_vat(number: str) -> None:
    """Check a UK or EU VAT number: format and check digits, and with
    DROPLINE_SHOP_VAT_CHECKER=vies whether VIES has an EU number registered."""
    with readable_errors():
        checked = services().vat_checker.check(number)
    console.print(f"{checked} is valid ({checked.country})", highlight=False)
