"""``dropline customers``: a customer's personal data from the command line: export it as
JSON, erase it (pseudonymise, after a confirmation). The same services as the console's
Customers page (``dropline.privacy``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dropline.audit import acting_as
from dropline.cli_support import readable_errors, services
from dropline.privacy import service as privacy

console = Console()
customers_app = typer.Typer(help="A customer's personal data: export (JSON) and erasure.",
                            no_args_is_help=True)
ACTOR = "cli"


@customers_app.command("export", epilog="Example: dropline customers export 42 --out c42.json")
def export(customer_id: Annotated[int, typer.Argument(min=1, max=2**53, help="Customer id.")],
           out: Annotated[Path | None, typer.Option(
               help="Write the JSON to this file (default: standard output).")] = None) -> None:
    """Everything the shop holds about a customer, as JSON (a subject access request)."""
    with readable_errors(), services().db.transaction() as session:
        data = privacy.export_customer(session, customer_id=customer_id)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"customer {customer_id}: exported to {out}")


@customers_app.command("erase", epilog="Example: dropline customers erase 42 --yes")
def erase(customer_id: Annotated[int, typer.Argument(min=1, max=2**53, help="Customer id.")],
          yes: Annotated[bool, typer.Option(
              "--yes", help="Do not ask; erase (for scripts).")] = False) -> None:
    """Erase a customer's personal data: their account and orders keep no email, name or
    address (orders, amounts and tax records stay; the audit trail records the erasure).
    Refused while an order is on its way or a membership is live. It cannot be undone."""
    if not yes:
        typer.confirm(f"Erase the personal data of customer {customer_id}? This cannot be "
                      "undone", abort=True)
    with readable_errors(), acting_as(ACTOR, services().clock), \
            services().db.transaction() as session:
        customer = privacy.erase_customer(session, clock=services().clock,
                                          customer_id=customer_id)
        console.print(f"customer {customer.id}: personal data erased ({customer.email})")
