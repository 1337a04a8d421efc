"""``dropline discounts``: create, list, show and withdraw discount codes; the same services
as the admin API (``/api/v1/admin/discounts``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dropline.audit import acting_as
from dropline.cli_support import command_transaction, services
from dropline.discounts import service
from dropline.discounts.models import DiscountCode
from dropline.discounts.rules import DiscountKind, Stacking
from dropline.errors import InvalidInput

console = Console()
discounts_app = typer.Typer(help="Discount codes: percentage, fixed amount or free delivery, "
                                 "scoped and capped.", no_args_is_help=True)


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--{name}: write a date or time like 2026-12-24 or "
                           "2026-12-24T09:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _value(code: DiscountCode) -> str:
    if code.kind is DiscountKind.percentage:
        return f"{code.percent}%"
    if code.kind is DiscountKind.fixed:
        return f"{code.amount} {code.currency}"
    return "free delivery"


def _row(code: DiscountCode) -> dict[str, str]:
    scope = "; ".join(f"{k.removesuffix('s').replace('_', ' ')}: {', '.join(map(str, v))}"
                      for k, v in (code.scope or {}).items() if v) or "everything"
    uses = f"{code.uses}/{code.max_uses}" if code.max_uses else str(code.uses)
    if code.max_uses_per_customer:
        uses += f" (max {code.max_uses_per_customer} each)"
    return {"id": str(code.id), "code": code.code, "value": _value(code), "scope": scope,
            "stacking": code.stacking.value,
            "from": f"{code.starts_at:%Y-%m-%d %H:%M}" if code.starts_at else "",
            "until": f"{code.ends_at:%Y-%m-%d %H:%M}" if code.ends_at else "", "uses": uses,
            "state": "withdrawn" if code.disabled_at else "live"}


def _print(codes: list[DiscountCode]) -> None:
    """One code as lines (every field in full), several as a table."""
    if len(codes) == 1:
        for name, value in _row(codes[0]).items():
            console.print(f"{name:>9}  {value}", highlight=False, soft_wrap=True)
        return
    table = Table()
    rows = [_row(code) for code in codes]
    for column in ("id", "code", "value", "scope", "stacking", "from", "until", "uses",
                   "state"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


@discounts_app.command("create", epilog="Example: dropline discounts create SPRING10 "
                       "--percent 10 --family eau-de-parfum --until 2026-04-01 --max-uses 500 "
                       "--per-customer 1   (or --amount 500 for £5 off, or --free-delivery)")
def create(
    code: str,
    percent: Annotated[int | None, typer.Option(help="percent off (1-100)")] = None,
    amount: Annotated[int | None, typer.Option(help="minor units off (pence)")] = None,
    free_delivery: Annotated[bool, typer.Option("--free-delivery",
                                                help="delivery costs nothing")] = False,
    product: Annotated[list[int] | None, typer.Option(help="only this product id")] = None,
    family: Annotated[list[str] | None, typer.Option(help="only this family slug")] = None,
    drop: Annotated[list[int] | None, typer.Option(help="only this drop's variants")] = None,
    tier: Annotated[list[str] | None, typer.Option(help="only members of this tier")] = None,
    start: Annotated[str | None, typer.Option("--from", help="valid from (UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="valid until (UTC, exclusive)")] = None,
    max_uses: Annotated[int | None, typer.Option(help="uses in total")] = None,
    per_customer: Annotated[int | None, typer.Option(help="uses per customer")] = None,
    stacking: Annotated[Stacking, typer.Option(help="how it meets member prices")]
    = Stacking.with_member_price,
    description: Annotated[str, typer.Option(help="a note for the team")] = "",
) -> None:
    """Create a discount code (give exactly one of --percent, --amount, --free-delivery)."""
    with acting_as("cli"), command_transaction() as session:
        kinds = [k for k, given in ((DiscountKind.percentage, percent is not None),
                                    (DiscountKind.fixed, amount is not None),
                                    (DiscountKind.free_delivery, free_delivery)) if given]
        if len(kinds) != 1:
            raise InvalidInput("give exactly one of --percent, --amount or --free-delivery")
        created = service.create_code(session, clock=services().clock, spec=service.CodeSpec(
            code=code, kind=kinds[0], percent=percent or 0, amount=amount or 0,
            currency=services().settings.shop.currency, description=description,
            product_ids=product or [], family_slugs=family or [], drop_ids=drop or [],
            tier_slugs=tier or [], starts_at=_when(start, "from"),
            ends_at=_when(until, "until"), max_uses=max_uses,
            max_uses_per_customer=per_customer, stacking=stacking))
        _print([created])


@discounts_app.command("list", epilog="Example: dropline discounts list --limit 20")
def list_(limit: Annotated[int, typer.Option(min=1, max=1000)] = 100) -> None:
    """Discount codes, newest first, with their uses."""
    with command_transaction() as session:
        _print(service.list_codes(session, limit=limit))


@discounts_app.command("show", epilog="Example: dropline discounts show SPRING10")
def show(code: str) -> None:
    """One code by its text (any case)."""
    with command_transaction() as session:
        _print([service.lookup_code(session, code)])


@discounts_app.command("disable", epilog="Example: dropline discounts disable SPRING10")
def disable(code: str) -> None:
    """Withdraw a code: no new checkout can use it; orders that used it keep their price."""
    with acting_as("cli"), command_transaction() as session:
        found = service.lookup_code(session, code)
        _print([service.disable_code(session, clock=services().clock, code_id=found.id)])
