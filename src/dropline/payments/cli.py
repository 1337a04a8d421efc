"""``dropline payments ...``: payment recovery, the same pass the background worker runs."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dropline.cli_support import services
from dropline.orders.jobs import RECOVERY_GRACE_SECONDS, Recovered
from dropline.payments.provider import ProviderUnavailable
from dropline.reconciliation import Reconciled, reconcile_payments
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


UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, *, now: datetime) -> datetime:
    """``24h``, ``7d``, ``90m`` before now, or an ISO date or date-time (UTC unless it says
    otherwise); raises ``typer.BadParameter`` with the accepted forms."""
    value = value.strip()
    if match := re.fullmatch(r"(\d{1,5})([mhd])", value):
        amount, unit = int(match[1]), match[2]
        return now - timedelta(**{UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a period start: use e.g. 24h, 7d, 2026-12-01 or "
            "2026-12-01T09:00Z", param_hint="'--since'") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed > now:
        raise typer.BadParameter(f"{value} is in the future", param_hint="'--since'")
    return parsed.astimezone(UTC)


def print_reconciled(done: Reconciled, since: datetime) -> None:
    table = Table(title=f"reconciliation with the provider since {since:%Y-%m-%d %H:%M} UTC",
                  show_header=False)
    table.add_row("charges the provider lists", str(done.listed))
    table.add_row("agreeing with an order", str(done.matched))
    table.add_row("pending payments settled paid", str(done.settled_paid))
    table.add_row("pending payments settled declined (units given back)",
                  str(done.settled_declined))
    table.add_row("new discrepancies left for an admin", str(len(done.found)))
    console.print(table)
    for line in done.found:
        console.print(f"  left: {line}")


@payments_app.command("reconcile", epilog="Example: dropline payments reconcile --grace 0\n\n"
                      "Example: dropline payments reconcile --since 24h\n\n"
                      "Example: dropline payments reconcile --since 2026-12-01")
def reconcile(
    grace: Annotated[int, typer.Option(
        min=0, help="Only payments pending for at least this many seconds.")
    ] = RECOVERY_GRACE_SECONDS,
    since: Annotated[str | None, typer.Option(
        help="Also compare with the provider's list of charges made since then (24h, 7d, "
             "an ISO date or date-time, UTC): pending payments it decided are settled, and "
             "charges without a paid order and paid orders without a charge are kept as "
             "discrepancies the admin overview shows.")] = None,
) -> None:
    """Settle orders whose charge succeeded (or was declined) at the provider but whose
    settlement never ran (a worker died between the two): each pending payment is looked up
    at the provider by its idempotency key, never charged again. With ``--since``, the
    provider's own list of charges for the period is compared with the orders too. Safe to run
    any number of times; the background worker runs the first pass every jobs interval."""
    s = services()
    start = parse_since(since, now=s.clock.now()) if since is not None else None
    print_recovered(run_recovery(grace_seconds=grace))
    if start is None:
        return
    try:
        done = reconcile_payments(s.db, clock=s.clock, provider=s.payments, policy=s.checkout,
                                  since=start)
    except ProviderUnavailable as exc:
        console.print(f"the payment provider's list could not be read ({exc}); nothing was "
                      "changed by this part: run it again")
        raise typer.Exit(1) from None
    print_reconciled(done, start)
