"""``dropline returns``, ``dropline risk`` and ``dropline audit``: the same services as the
API and the console. Changes made here are audited as actor ``cli``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import dropline.risk.scopes  # noqa: F401 - registers the scopes
from dropline.audit import acting_as
from dropline.catalog.models import ConditionGrade
from dropline.cli_support import readable_errors, services
from dropline.db import Database
from dropline.errors import InvalidInput
from dropline.risk import audit, config, flows, queue, returns
from dropline.risk.models import ReturnStatus

console = Console()
err = Console(stderr=True)
ACTOR = "cli"
returns_app = typer.Typer(help="Returns (RMA): list, receive, approve, deny, refund; serials "
                               "and return policies.", no_args_is_help=True)
risk_app = typer.Typer(help="Refund-fraud signals: the review queue, customer scores, "
                            "settings and chargebacks.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only audit log: list and export (CSV).",
                        no_args_is_help=True)


@contextmanager
def _db() -> Iterator[Database]:
    with readable_errors(), acting_as(ACTOR):
        yield services().db


def _show_return(ret: Any) -> None:
    table = Table(title=f"return {ret.id}", show_header=False)
    for key in ("status", "order_id", "order_line_id", "customer_id", "quantity", "reason",
                "received_grade", "serial_received", "outcome", "gross_amount", "fee_amount",
                "refund_amount", "refund_id"):
        value = getattr(ret, key)
        table.add_row(key, str(getattr(value, "value", value)))
    console.print(table)


# --- returns -------------------------------------------------------------------------------

@returns_app.command("list")
def list_cmd(status: Annotated[str | None, typer.Option(help="requested, in-review, ...")] = None,
             limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """List returns, newest first.

    Example: dropline returns list --status in-review
    """
    with _db() as db, db.transaction() as session:
        try:
            wanted = ReturnStatus(status) if status else None
        except ValueError:
            raise InvalidInput(f"unknown status {status!r}; one of "
                               f"{', '.join(s.value for s in ReturnStatus)}") from None
        table = Table("id", "order", "customer", "qty", "reason", "status", "refund")
        for r in returns.list_returns(session, status=wanted, limit=limit):
            table.add_row(str(r.id), str(r.order_id), str(r.customer_id), str(r.quantity),
                          r.reason, r.status.value, "" if r.refund_amount is None
                          else str(r.refund_amount))
        console.print(table)


@returns_app.command("show")
def show_cmd(return_id: int) -> None:
    """Show one return.

    Example: dropline returns show 12
    """
    with _db() as db, db.transaction() as session:
        _show_return(returns.get_return(session, return_id))


def _pay(db: Database, return_id: int) -> None:
    clock = services().clock
    with db.transaction() as session:
        ret = returns.get_return(session, return_id)
        due = ret.status is ReturnStatus.approved and ret.outcome is not None \
            and ret.outcome.value == "refund"
    if due:
        flows.refund_return(db, clock=clock, provider=services().payments,
                            credit_notes=services().credit_notes, return_id=return_id,
                            actor=ACTOR)


@returns_app.command("receive")
def receive_cmd(return_id: int,
                grade: Annotated[ConditionGrade, typer.Option(help="condition on receipt")],
                location: Annotated[str, typer.Option(help="location code")] = "central",
                serial: Annotated[str | None, typer.Option(help="serial on the unit")] = None,
                ) -> None:
    """Record the goods received; approves and refunds at once below the review score.

    Example: dropline returns receive 12 --grade refurbished-b --location park-royal
    """
    with _db() as db:
        with db.transaction() as session:
            returns.receive_return(session, clock=services().clock, return_id=return_id,
                                   grade=grade, location_code=location, serial=serial)
        _pay(db, return_id)
        with db.transaction() as session:
            _show_return(returns.get_return(session, return_id))


def _decide(return_id: int, action: Callable[..., Any], **kwargs: Any) -> None:
    with _db() as db:
        with db.transaction() as session:
            action(session, clock=services().clock, return_id=return_id, actor=ACTOR, **kwargs)
        _pay(db, return_id)
        with db.transaction() as session:
            _show_return(returns.get_return(session, return_id))


@returns_app.command("approve")
def approve_cmd(return_id: int, note: Annotated[str, typer.Option(max=500)] = "",
                amount: Annotated[int | None, typer.Option(
                    min=0, help="partial refund in minor units")] = None,
                waive_fee: Annotated[bool, typer.Option(help="no restocking fee")] = False,
                ) -> None:
    """Approve a return in review and pay its refund.

    Example: dropline returns approve 12 --note "checked the serial by phone" --amount 2500
    """
    _decide(return_id, returns.approve_return, note=note, refund_amount=amount,
            waive_fee=waive_fee)


@returns_app.command("deny")
def deny_cmd(return_id: int, note: Annotated[str, typer.Option(help="why (told to the "
                                                                   "customer)")]) -> None:
    """Deny a return, with the reason.

    Example: dropline returns deny 12 --note "serial does not match our records"
    """
    _decide(return_id, returns.deny_return, note=note)


@returns_app.command("refund")
def refund_cmd(return_id: int) -> None:
    """Pay (or resume paying) an approved refund; safe to repeat.

    Example: dropline returns refund 12
    """
    with _db() as db:
        flows.refund_return(db, clock=services().clock, provider=services().payments,
                            credit_notes=services().credit_notes, return_id=return_id,
                            actor=ACTOR)
        with db.transaction() as session:
            _show_return(returns.get_return(session, return_id))


@returns_app.command("policy")
def policy_cmd(product_id: int,
               window_days: Annotated[int | None, typer.Option(min=0, max=3650)] = None,
               final_sale: Annotated[bool, typer.Option(help="not returnable")] = False,
               fee_bps: Annotated[int | None, typer.Option(min=0, max=10_000)] = None) -> None:
    """Set a product's return window, final sale and restocking fee.

    Example: dropline returns policy 4 --window-days 14 --fee-bps 500
    """
    with _db() as db, db.transaction() as session:
        row = returns.set_return_policy(session, clock=services().clock, product_id=product_id,
                                        window_days=window_days, final_sale=final_sale,
                                        restocking_fee_bps=fee_bps)
        console.print(f"product {row.product_id}: window {row.window_days}, final sale "
                      f"{row.final_sale}, fee {row.restocking_fee_bps} bps")


# --- risk ----------------------------------------------------------------------------------

def print_queue(items: list[queue.QueueItem], threshold: int) -> None:
    if not items:
        console.print("Nothing waits for review.")
        return
    table = Table("case", "return", "score", "customer", "item", "value", "signals and reasons",
                  title=f"Review queue: {len(items)} case(s) at or above {threshold}",
                  show_lines=True)
    for item in items:
        reasons = "\n".join(f"[bold]{s['name']}[/] +{s['points']}: {s['reason']}"
                            for s in item.case.signals)
        table.add_row(str(item.case.id), str(item.ret.id), str(item.case.score), item.email,
                      f"{item.product} x{item.ret.quantity}", f"{item.value} {item.currency}",
                      reasons)
    console.print(table)
    console.print("Act on a case: dropline returns approve RETURN_ID [--amount N] | "
                  "dropline returns deny RETURN_ID --note WHY")


@risk_app.command("queue")
def queue_cmd(as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False
              ) -> None:
    """The review queue: open cases, highest score first, each signal with its reason.

    Example: dropline risk queue
    """
    with _db() as db, db.transaction() as session:
        items = queue.review_queue(session)
        threshold = config.load_config(session).thresholds.review_score
        if as_json:
            print(json.dumps([{"case_id": i.case.id, "return_id": i.ret.id,
                               "score": i.case.score, "customer": i.email,
                               "signals": i.case.signals} for i in items], indent=2))
            return
        print_queue(items, threshold)


@risk_app.command("customer")
def customer_cmd(customer_id: int) -> None:
    """A customer's risk score, explained.

    Example: dropline risk customer 42
    """
    with _db() as db, db.transaction() as session:
        score = queue.customer_score(session, clock=services().clock, customer_id=customer_id)
        console.print(f"customer {customer_id}: score {score.score} (review at "
                      f"{score.threshold})")
        for reason in score.reasons:
            console.print(f"  - {reason}")


@risk_app.command("settings")
def settings_cmd(set_: Annotated[list[str] | None, typer.Option(
        "--set", help="key=JSON value, repeatable")] = None) -> None:
    """Show the returns and risk settings, or change some.

    Example: dropline risk settings --set review_score=50 --set 'wardrobing_families=["candles"]'
    """
    with _db() as db, db.transaction() as session:
        if set_:
            values: dict[str, Any] = {}
            for item in set_:
                key, _, raw = item.partition("=")
                try:
                    values[key.strip()] = json.loads(raw)
                except json.JSONDecodeError:
                    raise InvalidInput(f"{item!r}: the value must be JSON, e.g. "
                                       "review_score=50") from None
            cfg = config.update_settings(session, clock=services().clock, values=values)
        else:
            cfg = config.load_config(session)
        for key, value in sorted(cfg.raw.items()):
            console.print(f"{key} = {json.dumps(value)}")


@risk_app.command("chargeback")
def chargeback_cmd(order_id: int, amount: Annotated[int, typer.Option(min=1)],
                   reason: Annotated[str, typer.Option()] = "") -> None:
    """Record a chargeback the card network reported on an order.

    Example: dropline risk chargeback 101 --amount 4200 --reason fraudulent
    """
    with _db() as db, db.transaction() as session:
        row = returns.record_chargeback(session, clock=services().clock, order_id=order_id,
                                        amount=amount, reason=reason, actor=ACTOR)
        console.print(f"chargeback {row.id} recorded on order {order_id}")


# --- audit ---------------------------------------------------------------------------------

def _filter(entity: str | None, actor: str | None, since: str | None) -> audit.AuditFilter:
    when = None
    if since:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput(f"not a date: {since!r} (use YYYY-MM-DD)") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return audit.AuditFilter(entity=entity, actor=actor, since=when)


@audit_app.command("list")
def audit_list_cmd(entity: Annotated[str | None, typer.Option(help="e.g. orders")] = None,
                   actor: Annotated[str | None, typer.Option(help="e.g. admin:1")] = None,
                   since: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
                   limit: Annotated[int, typer.Option(min=1, max=1000)] = 30) -> None:
    """The latest audit entries.

    Example: dropline audit list --entity orders --actor token:3
    """
    with _db() as db, db.transaction() as session:
        table = Table("id", "when", "actor", "action", "what", "changes")
        for row in audit.list_audit(session, _filter(entity, actor, since), limit=limit):
            changes = "; ".join(f"{k}: {old} -> {new}" for k, (old, new) in
                                sorted(row.changes.items()))
            table.add_row(str(row.id), row.occurred_at.strftime("%Y-%m-%d %H:%M"), row.actor,
                          row.action, f"{row.entity} {row.entity_id}", changes[:200])
        console.print(table)


@audit_app.command("export")
def audit_export_cmd(out: Annotated[Path, typer.Option(help="CSV file to write")],
                     entity: Annotated[str | None, typer.Option()] = None,
                     actor: Annotated[str | None, typer.Option()] = None,
                     since: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None
                     ) -> None:
    """Export the audit log (one line per changed column) as CSV.

    Example: dropline audit export --out audit.csv --since 2026-01-01
    """
    with readable_errors():
        wanted = _filter(entity, actor, since)
    try:
        handle = out.open("w", newline="")
    except OSError as exc:  # a missing folder, no permission, a directory: one line, no trace
        typer.echo(f"error: cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    with handle, _db() as db, db.transaction() as session, \
            Progress(console=err, transient=True) as progress:
        task = progress.add_task("exporting", total=None)
        for chunk in audit.iter_audit_csv(session, wanted):
            handle.write(chunk)
            progress.advance(task, chunk.count("\n"))
    console.print(f"wrote {out}")
