"""``dropline payments ...``: payment recovery, the same pass the background worker runs."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dropline.cli_support import services
from dropline.orders.jobs import RECOVERY_GRACE_SECONDS, Recovered
from dropline.recovery import recover_payments

payments_app = typer.Typer(help="Payments: settle charges a crashed worker left unsettled.",
                           no_args_is_help=True)
console = Console()


def run_recovery(*, grace_seconds: int, order_ids: Collection[int] | None = None) -> Recovered:
    """One recovery pass over the process's services, with a progress bar on the console."""
    s = services()
    with Progress(TextColumn("settling stranded payments"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("settle", total=None)
        return recover_payments(
            s.db, clock=s.clock, provider=s.payments, policy=s.checkout,
            redis_url=s.settings.redis.url, grace_seconds=grace_seconds, order_ids=order_ids,
            progress=lambda done, total: progress.update(task, completed=done, total=total))


def print_recovered(recovered: Recovered) -> None:
    table = Table(title="payment recovery", show_header=False)
    table.add_row("pending payments looked up", str(recovered.looked_up))
    table.add_row("settled paid", str(recovered.paid))
    table.add_row("settled failed (units given back)", str(recovered.failed))
    table.add_row("never charged (left for the shopper's retry)", str(recovered.not_charged))
    console.print(table)


@payments_app.command("reconcile", epilog="Example: dropline payments reconcile --grace 0")
def reconcile(
    grace: Annotated[int, typer.Option(
        min=0, help="Only payments pending for at least this many seconds.")
    ] = RECOVERY_GRACE_SECONDS,
) -> None:
    """Settle orders whose charge succeeded (or was declined) at the provider but whose
    settlement never ran (a worker died between the two): each pending payment is looked up
    at the provider by its idempotency key, never charged again. Safe to run any number of
    times; the background worker runs the same pass every jobs interval."""
    print_recovered(run_recovery(grace_seconds=grace))
