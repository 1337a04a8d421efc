"""``dropline drops plan`` and ``dropline planning attention|cadence|caps|sustainability``:
the same ``service.plan_drops`` as the API and the console page."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dropline.cli_support import services
from dropline.errors import DomainError
from dropline.planning import service

planning_app = typer.Typer(
    help="Drop planning: attention cycles, the next drop dates, caps sized to demand and "
         "the waste they avoid. Read-only: it recommends, `dropline drops create` decides.",
    no_args_is_help=True)
console = Console()
err = Console(stderr=True)

AsJson = Annotated[bool, typer.Option("--json", help="One JSON object on the last line.")]
Target = Annotated[float, typer.Option(min=0.05, max=0.99,
                                       help="Probability of selling out the cap aims for.")]
Bootstrap = Annotated[int, typer.Option(min=0, max=500,
                                        help="Bootstrap refits for the intervals.")]


def _plan(*, bootstrap: int, target: float) -> service.DropPlan:
    try:
        with err.status("Fitting attention cycles and demand…"), \
                services().db.transaction() as session:
            return service.plan_drops(session, clock=services().clock, bootstrap=bootstrap,
                                      target=target)
    except DomainError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        raise typer.Exit(2) from None


def _emit(data: Any) -> None:
    print(json.dumps(data, default=str))


def plan(as_json: AsJson = False, target: Target = 0.8, bootstrap: Bootstrap = 30) -> None:
    """Recommended next drop dates and caps, with their reasons.

    Example: dropline drops plan --json
    """
    result = _plan(bootstrap=bootstrap, target=target)
    data = result.as_dict()
    if as_json:
        _emit({k: data[k] for k in ("as_of", "recommendations", "scheduled", "cadence", "signals_now",
                                    "demand_model", "lead_times_days", "down_weighted_drops")}
              | {"attention": data["attention"].get("all"),
                 "sustainability_totals": data["sustainability"][-1]
                 if data["sustainability"] else None})
        return
    table = Table("date", "gap (d)", "attention", "cap", "P(sell out)", "left over",
                  "made to order", title="Next drops")
    for rec in data["recommendations"]:
        cap = rec["cap"]
        table.add_row(rec["date"], str(rec["gap_days"]), f"{rec['expected_attention']:.0f}",
                      str(cap["recommended_cap"]), f"{cap['p_sell_out']:.0%}",
                      f"{cap['expected_left_over']:.1f}",
                      f"{cap['expected_made_to_order']:.1f} (ships "
                      f"{cap['made_to_order_ships']})")
    console.print(table)
    console.print(f"[bold]Why:[/] {data['cadence']['why']}")
    if data["down_weighted_drops"]:
        console.print("[bold]Counted for less[/] (under half the typical drop's size): "
                      + ", ".join(data["down_weighted_drops"]))
    if data["recommendations"]:
        console.print(f"[bold]Cap:[/] {data['recommendations'][0]['cap']['reason']}")
    for drop in data["scheduled"]:
        console.print(f"[bold]Scheduled {drop['slug']}[/] (cap now {drop['cap_now']}): "
                      f"{drop['cap']['reason']}")


@planning_app.command("attention", epilog="Example: dropline planning attention --json")
def attention(as_json: AsJson = False, bootstrap: Bootstrap = 30) -> None:
    """The attention cycle per segment: half-lives, recovery and best gap, with intervals."""
    data = _plan(bootstrap=bootstrap, target=0.8).as_dict()["attention"]
    if as_json:
        _emit(data)
        return
    table = Table("segment", "baseline/day", "rise half-life (d)", "decay half-life (d)",
                  "90% recovered (d)", "best gap (d)", title="Attention cycle (90% intervals)")

    def show(interval: dict[str, float] | None) -> str:
        if not interval:
            return "—"
        return f"{interval['estimate']:.1f} ({interval['low']:.1f}–{interval['high']:.1f})"

    for name, model in data.items():
        table.add_row(name, show(model["baseline_per_day"]), show(model["half_life_rise_days"]),
                      show(model["half_life_decay_days"]), show(model["recovery_days"]),
                      show(model["best_gap_days"]))
    console.print(table)


@planning_app.command("cadence", epilog="Example: dropline planning cadence --json")
def cadence(as_json: AsJson = False) -> None:
    """Candidate dates, why the top one wins, and the days ruled out (clashes, production)."""
    data = _plan(bootstrap=10, target=0.8).as_dict()["cadence"]
    if as_json:
        _emit(data)
        return
    for rec in data["recommended"]:
        console.print(f"{rec['date']}: gap {rec['gap_days']} d, "
                      f"{rec['expected_attention']:.0f} touches expected")
    console.print(f"[bold]Why:[/] {data['why']}")


@planning_app.command("caps", epilog="Example: dropline planning caps --target 0.9 --json")
def caps(as_json: AsJson = False, target: Target = 0.8) -> None:
    """The cap trade-off for the next recommended date: P(sell out) vs units left over."""
    result = _plan(bootstrap=10, target=target)
    if not result.caps:
        err.print("[bold red]error:[/] no date to size a cap for; see `dropline planning "
                  "cadence`")
        raise typer.Exit(2)
    day, cap_plan = result.caps[0]
    if as_json:
        _emit({"date": day.isoformat(), **cap_plan.as_dict()})
        return
    table = Table("cap", "P(sell out)", "expected left over", "expected made to order",
                  title=f"Cap trade-off for {day.isoformat()}")
    for option in cap_plan.options[:: max(len(cap_plan.options) // 15, 1)]:
        table.add_row(str(option.cap), f"{option.p_sell_out:.0%}",
                      f"{option.expected_left_over:.1f}", f"{option.expected_made_to_order:.1f}")
    console.print(table)
    console.print(f"[bold]Recommended:[/] {cap_plan.reason}")


@planning_app.command("sustainability",
                      epilog="Example: dropline planning sustainability --json")
def sustainability(as_json: AsJson = False) -> None:
    """Per drop: units left over, made to order, sell-through time, running totals."""
    with services().db.transaction() as session:
        rows = [r.as_dict() for r in service.sustainability(session, clock=services().clock)]
    if as_json:
        _emit(rows)
        return
    table = Table("drop", "cap", "sold", "left over", "made to order", "sold out after (h)",
                  "total left over", "total made to order", title="Sustainability")
    for r in rows:
        table.add_row(str(r["slug"]), str(r["cap"]), str(r["units_sold"]),
                      "—" if r["units_left_over"] is None else str(r["units_left_over"]),
                      str(r["units_made_to_order"]),
                      "—" if r["sell_through_hours"] is None else f"{r['sell_through_hours']}",
                      str(r["total_left_over"]), str(r["total_made_to_order"]))
    console.print(table)


def mount(root: typer.Typer, drops_app: typer.Typer) -> None:
    """Adds ``plan`` to the drops app and ``planning`` to the root (called by dropline.cli)."""
    drops_app.command("plan", epilog="Example: dropline drops plan --json")(plan)
    root.add_typer(planning_app, name="planning")
