"""`dropline routes`: solve benchmark instances; `dropline fulfilment`: the network, rules,
windows, plans and route sheets (calling the same services as the web API)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dropline.catalog.service import get_location_by_code
from dropline.checkout_policy import customer_delivery_facts, orders_in_live_drops
from dropline.cli_support import services
from dropline.errors import DomainError
from dropline.fulfilment.batch import decide_undecided_orders
from dropline.fulfilment.decision_tree import tree_html, tree_markdown, tree_svg
from dropline.fulfilment.jobs import run_fulfilment_jobs
from dropline.fulfilment.models import MovementKind
from dropline.fulfilment.planning import plan_window, route_sheet
from dropline.fulfilment.routemap import route_map_svg
from dropline.fulfilment.rules import describe_rule, rule_to_data
from dropline.fulfilment.schemas import RouteSheetRead
from dropline.fulfilment.service import (
    LineRequest,
    create_windows,
    decide_with_options,
    list_windows,
    load_rules,
    replace_rules,
    resolve_destination,
    start_movement,
    window_options,
)
from dropline.fulfilment.window_templates import (
    TemplateSpec,
    list_templates,
    remove_template,
    roll_windows_forward,
    set_template,
)
from dropline.fulfilment.solomon import (
    InstanceFormatError,
    dimacs_cost,
    read_best_known,
    read_solomon,
)

routes_app = typer.Typer(
    help="Plan delivery routes (capacitated VRP with time windows).",
    no_args_is_help=True,
)

FORMATS = ("solomon",)


@routes_app.callback()
def routes() -> None:
    """Plan delivery routes (capacitated VRP with time windows)."""
    # A callback keeps `solve` a subcommand even while it is the only one; without it Typer
    # would collapse this app into the bare command.


class _InputError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


@routes_app.command(
    "solve",
    epilog="Example: dropline routes solve data/C101.txt --format solomon --seconds 10 --json",
)
def solve(
    file: Annotated[Path, typer.Argument(help="Instance file to solve.", show_default=False)],
    instance_format: Annotated[
        str, typer.Option("--format", help=f"Instance format: {', '.join(FORMATS)}.")
    ] = "solomon",
    seconds: Annotated[float, typer.Option(help="Search time limit, in seconds.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed of the search.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Solve a VRPTW benchmark instance and report cost, routes and the gap to best known.

    Costs follow the DIMACS convention of the best-known .sol files: distance only, each arc
    truncated to one decimal. A .sol file beside FILE adds bks and gap_pct to the report.
    Routes list customers by their number in the file, depot excluded.
    """
    try:
        report = _solve_file(file, instance_format=instance_format, seconds=seconds, seed=seed)
    except _InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None

    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_summary(Console(), report)


def _solve_file(
    file: Path, *, instance_format: str, seconds: float, seed: int
) -> dict[str, object]:
    if instance_format not in FORMATS:
        raise _InputError(f"unknown format {instance_format!r}; supported: {', '.join(FORMATS)}")
    if not seconds > 0:  # also refuses NaN
        raise _InputError(f"--seconds must be positive, got {seconds}")
    if not file.is_file():
        raise _InputError(f"no such file: {file}")
    try:
        problem = read_solomon(file)
    except (InstanceFormatError, OSError) as exc:
        raise _InputError(str(exc)) from exc

    started = time.perf_counter()
    plan = services().solver.solve(problem, max_seconds=seconds, seed=seed)
    elapsed = time.perf_counter() - started

    cost = dimacs_cost(problem, plan.sequences)
    report: dict[str, object] = {
        "instance": problem.name or file.stem,
        "cost": cost,
        "feasible": plan.feasible,
        "vehicles": len(plan.routes),
        "routes": plan.sequences,
        "unassigned": list(plan.unassigned),
        "seconds": round(elapsed, 2),
        "seed": seed,
    }
    solution = file.with_suffix(".sol")
    if solution.is_file():
        try:
            bks = read_best_known(solution).cost
        except InstanceFormatError as exc:
            raise _InputError(str(exc)) from exc
        report["bks"] = bks
        report["gap_pct"] = round(100 * (cost - bks) / bks, 2)
    return report


def _print_summary(console: Console, report: dict[str, object]) -> None:
    table = Table(title=f"{report['instance']}: {report['vehicles']} routes")
    table.add_column("route", justify="right")
    table.add_column("customers")
    for number, route in enumerate(report["routes"], start=1):  # type: ignore[arg-type]
        table.add_row(str(number), " ".join(str(c) for c in route))
    console.print(table)
    line = f"cost {report['cost']:.1f}"
    if "bks" in report:
        line += f"  best known {report['bks']:.1f}  gap {report['gap_pct']:.2f}%"
    line += f"  {'feasible' if report['feasible'] else 'INFEASIBLE'}  {report['seconds']} s"
    console.print(line, highlight=False)


# --- `dropline fulfilment`: the network, rules, windows and plans ---------------------------

fulfilment_app = typer.Typer(
    help="Edge fulfilment: the brand's rules and decision tree, delivery windows, route plans "
         "and sheets, restocking.",
    no_args_is_help=True,
)
rules_app = typer.Typer(help="The brand's fulfilment rules.", no_args_is_help=True)
windows_app = typer.Typer(help="Hub delivery windows.", no_args_is_help=True)
position_app = typer.Typer(
    help="Stock where demand is: the positioning plan per hub and variant, and accepting its "
         "transfer and production-run proposals.", no_args_is_help=True)
templates_app = typer.Typer(
    help="Delivery-window templates: each hub's windows kept N days ahead by the scheduler.",
    no_args_is_help=True)
fulfilment_app.add_typer(rules_app, name="rules")
fulfilment_app.add_typer(windows_app, name="windows")
fulfilment_app.add_typer(position_app, name="position")
fulfilment_app.add_typer(templates_app, name="templates")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@contextmanager
def _unit_of_work() -> Iterator[tuple[Any, Any]]:
    """One transaction per command; domain errors become one line and exit code 2."""
    try:
        with services().db.transaction() as session:
            yield session, services().clock
    except DomainError as exc:
        raise _fail(exc.detail) from None


@rules_app.command("show", epilog="Example: dropline fulfilment rules show --json")
def rules_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
               ) -> None:
    """List the rules, in the order they are tried."""
    with _unit_of_work() as (session, _):
        rules = load_rules(session)
    if as_json:
        typer.echo(json.dumps([rule_to_data(r) for r in rules], indent=2))
        return
    for number, rule in enumerate(rules, start=1):
        state = "" if rule.enabled else " (disabled)"
        typer.echo(f"{number}. {rule.name}{state}: {describe_rule(rule)}")
    if not rules:
        typer.echo("no rules: every order goes the cheapest way that has stock and keeps the "
                   "promise")


@rules_app.command("set", epilog="Example: dropline fulfilment rules set rules.json")
def rules_set(file: Annotated[Path, typer.Argument(help="JSON list of rules.")]) -> None:
    """Replace the rules with those in FILE: [{name, conditions: [{field, op, value}],
    action: prefer-hub|prefer-central, max_premium_amount?, enabled?}, ...]."""
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise _fail("the file must hold a JSON list of rule objects")
    with _unit_of_work() as (session, clock):
        rules = replace_rules(session, clock=clock, rules=data, actor="cli")
    typer.echo(f"{len(rules)} rule(s) saved")


@fulfilment_app.command("tree", epilog="Example: dropline fulfilment tree --format svg -o tree.svg")
def tree(
    fmt: Annotated[str, typer.Option("--format", help="markdown, svg or html.")] = "markdown",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")]
    = None,
) -> None:
    """Generate the one-page fulfilment decision tree from the configured rules."""
    renderers = {"markdown": tree_markdown, "svg": tree_svg, "html": tree_html}
    if fmt not in renderers:
        raise _fail(f"unknown format {fmt!r}; one of {', '.join(renderers)}")
    with _unit_of_work() as (session, _):
        text = renderers[fmt](load_rules(session))
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")


@windows_app.command("create", epilog="Example: dropline fulfilment windows create "
                                      "--hub hub-hackney --day 2026-03-03 --capacity 40")
def windows_create(
    hub: Annotated[str, typer.Option(help="Hub location code.")],
    day: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Local date.")],
    minutes: Annotated[int, typer.Option(min=15, max=720, help="Window length.")] = 120,
    capacity: Annotated[int, typer.Option(min=1, max=10_000, help="Orders per window.")] = 40,
    cutoff: Annotated[int, typer.Option(min=0, max=2880,
                                        help="Minutes before the start that booking stops.")]
    = 120,
) -> None:
    """Slot a hub's day into delivery windows from its opening hours (idempotent)."""
    with _unit_of_work() as (session, _):
        windows = create_windows(session, location_code=hub, day=day.date(),
                                 window_minutes=minutes, capacity=capacity,
                                 cutoff_minutes=cutoff)
        rows = [(w.id, w.starts_at, w.ends_at, w.cutoff_at, w.booked, w.capacity)
                for w in windows]
    for wid, starts, ends, cut, booked, cap in rows:
        typer.echo(f"window {wid}: {starts:%Y-%m-%d %H:%M}–{ends:%H:%M} UTC, cutoff "
                   f"{cut:%H:%M}, {booked}/{cap} booked")


@windows_app.command("list", epilog="Example: dropline fulfilment windows list --hub hub-camden")
def windows_list(hub: Annotated[str | None, typer.Option(help="Hub location code.")] = None
                 ) -> None:
    """List delivery windows with their bookings."""
    with _unit_of_work() as (session, _):
        location_id = get_location_by_code(session, hub).id if hub else None
        windows = list_windows(session, location_id=location_id)
        table = Table("id", "hub", "starts (UTC)", "ends", "cutoff", "booked", "status")
        for w in windows:
            table.add_row(str(w.id), str(w.location_id), f"{w.starts_at:%Y-%m-%d %H:%M}",
                          f"{w.ends_at:%H:%M}", f"{w.cutoff_at:%H:%M}",
                          f"{w.booked}/{w.capacity}", w.status.value)
    Console().print(table)


@templates_app.command("set", epilog="Example: dropline fulfilment templates set --hub "
                                     "hub-hackney --minutes 120 --capacity 40 --days 14")
def templates_set(
    hub: Annotated[str, typer.Option(help="Hub location code.")],
    minutes: Annotated[int, typer.Option(min=15, max=720, help="Window length.")] = 120,
    capacity: Annotated[int, typer.Option(min=1, max=10_000, help="Orders per window.")] = 40,
    cutoff: Annotated[int, typer.Option(min=0, max=2880,
                                        help="Minutes before the start that booking stops.")]
    = 120,
    first_start: Annotated[str | None, typer.Option(
        help="Local time of the first window (HH:MM); default: opening time.")] = None,
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of windows kept ahead.")] = 14,
    paused: Annotated[bool, typer.Option("--paused", help="Keep it, but roll nothing.")]
    = False,
) -> None:
    """Create or replace a hub's window template, then roll its windows forward."""
    try:
        start = datetime.strptime(first_start, "%H:%M").time() if first_start else None
    except ValueError:
        raise _fail(f"--first-start: not a time (HH:MM): {first_start!r}") from None
    with _unit_of_work() as (session, clock):
        set_template(session, clock=clock, location_code=hub, spec=TemplateSpec(
            window_minutes=minutes, capacity=capacity, cutoff_minutes=cutoff,
            first_start=start, days_ahead=days, active=not paused))
        created = roll_windows_forward(session, clock=clock)
    typer.echo(f"template saved for {hub}; {max(created.get(hub, 0), 0)} window(s) created")


@templates_app.command("list", epilog="Example: dropline fulfilment templates list")
def templates_list() -> None:
    """List the hubs' window templates, one a line."""
    with _unit_of_work() as (session, _):
        rows = [(location.code, template) for template, location in list_templates(session)]
        for code, template in rows:
            first = template.first_start.strftime("%H:%M") if template.first_start \
                else "opening"
            typer.echo(f"{code}: {template.window_minutes} min windows from {first}, "
                       f"{template.capacity} orders each, booking stops "
                       f"{template.cutoff_minutes} min before, {template.days_ahead} days "
                       f"ahead, {'active' if template.active else 'paused'}")
    if not rows:
        typer.echo("no template: dropline fulfilment templates set --hub <code>")


@templates_app.command("roll", epilog="Example: dropline fulfilment templates roll")
def templates_roll() -> None:
    """Create the missing windows of every active template now (the scheduler does this by
    itself; running it again creates nothing)."""
    with _unit_of_work() as (session, clock):
        created = roll_windows_forward(session, clock=clock)
    for hub, count in created.items():
        typer.echo(f"{hub}: " + ("refused (check its opening hours)" if count < 0
                                 else f"{count} window(s) created"))
    if not created:
        typer.echo("no active template: dropline fulfilment templates set --hub <code>")


@templates_app.command("remove", epilog="Example: dropline fulfilment templates remove "
                                        "--hub hub-hackney")
def templates_remove(hub: Annotated[str, typer.Option(help="Hub location code.")]) -> None:
    """Stop rolling a hub's windows forward (windows already created stay bookable)."""
    with _unit_of_work() as (session, clock):
        remove_template(session, clock=clock, location_code=hub)
    typer.echo(f"template of {hub} removed")


@fulfilment_app.command("options", epilog="Example: dropline fulfilment options --line 12x2 "
                                          "--postcode 'E8 3PN'")
def options(
    line: Annotated[list[str], typer.Option(help="variant_id x quantity, e.g. 12x2 (repeat).")],
    postcode: Annotated[str | None, typer.Option(help="A London postcode (approximate).")]
    = None,
    lat: Annotated[float | None, typer.Option(help="Latitude.")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude.")] = None,
) -> None:
    """Decide how an order would be fulfilled, and list the windows it could book."""
    try:
        lines = [LineRequest(*(int(part) for part in item.split("x", 1))) for item in line]
    except (TypeError, ValueError):
        raise _fail("--line takes variant_id x quantity, e.g. 12x2") from None
    with _unit_of_work() as (session, clock):
        destination = resolve_destination(geocoder=services().geocoder, latitude=lat,
                                          longitude=lon, postcode=postcode)
        decision, found = decide_with_options(session, lines=lines, destination=destination,
                                              at=clock.now())
        windows = window_options(session, found.options)
    typer.echo(f"{decision.chosen.path} via {decision.chosen.location_code}: "
               f"{decision.explanation}")
    for w in windows:
        typer.echo(f"  window {w['window_id']} {w['hub']} {w['starts_at']:%a %H:%M} "
                   f"price {w['price_amount']} cost {w['cost_amount']} {w['label']}")


@fulfilment_app.command("plan", epilog="Example: dropline fulfilment plan 42 --seconds 5")
def plan(
    window_id: Annotated[int, typer.Argument(min=1, help="Window id.")],
    seconds: Annotated[float, typer.Option(min=0.1, max=600, help="Solver time.")] = 5.0,
    replan: Annotated[bool, typer.Option(help="Replace an existing plan.")] = False,
) -> None:
    """Plan one window's routes now (the worker does this at each window's cutoff)."""
    with _unit_of_work() as (session, clock):
        planned = plan_window(session, clock=clock, window_id=window_id,
                              solver=services().solver, max_seconds=seconds, replan=replan)
        summary = (len(planned.plan.routes), planned.row.cost_amount, planned.plan.feasible,
                   len(planned.plan.unassigned))
    typer.echo(f"window {window_id}: {summary[0]} route(s), cost {summary[1]}, "
               f"{'feasible' if summary[2] else 'INFEASIBLE'}, {summary[3]} unassigned")


@fulfilment_app.command("sheet", epilog="Example: dropline fulfilment sheet 42 --json")
def sheet(
    window_id: Annotated[int, typer.Argument(min=1, help="Window id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a planned window's route sheet: stop order, ETAs, load."""
    with _unit_of_work() as (session, _):
        found = route_sheet(session, window_id=window_id)
    if as_json:
        typer.echo(RouteSheetRead.model_validate(found, from_attributes=True)
                   .model_dump_json(indent=2))
        return
    console = Console()
    console.print(f"[bold]{found.hub_name}[/] window {found.window_id}: "
                  f"{found.starts_at:%Y-%m-%d %H:%M}–{found.ends_at:%H:%M} UTC, "
                  f"{len(found.routes)} route(s), cost {found.cost_amount}")
    for route in found.routes:
        table = Table("#", "ETA (UTC)", "order", "address", "g",
                      title=f"route {route.number} ({route.vehicle}): leaves "
                            f"{route.departs_at:%H:%M}, back {route.returns_at:%H:%M}, "
                            f"load {route.load_grams}/{route.capacity_grams} g")
        for stop in route.stops:
            table.add_row(str(stop.position), f"{stop.eta:%H:%M}", str(stop.order_id),
                          stop.label, str(stop.weight_grams))
        console.print(table)
    if found.unassigned:
        console.print(f"not on a route (send by carrier): "
                      f"{', '.join(str(s.order_id) for s in found.unassigned)}")


@fulfilment_app.command("map", epilog="Example: dropline fulfilment map 42 -o window-42.svg")
def route_map(
    window_id: Annotated[int, typer.Argument(min=1, help="Window id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="SVG file to write.")],
) -> None:
    """Draw a planned window's routes as an SVG picture."""
    with _unit_of_work() as (session, _):
        svg = route_map_svg(route_sheet(session, window_id=window_id))
    output.write_text(svg)
    typer.echo(f"wrote {output}")


@fulfilment_app.command("restock", epilog="Example: dropline fulfilment restock --kind "
                        "production --source factory-bermondsey --destination hub-hackney "
                        "--variant 12 --quantity 30 --lead-hours 48")
def restock(
    kind: Annotated[str, typer.Option(help="transfer or production.")],
    source: Annotated[str, typer.Option(help="Location code it comes from.")],
    destination: Annotated[str, typer.Option(help="Location code it goes to.")],
    variant: Annotated[int, typer.Option(min=1, help="Variant id.")],
    quantity: Annotated[int, typer.Option(min=1, help="Units.")],
    lead_hours: Annotated[float, typer.Option(min=0, help="Hours until it arrives.")] = 48.0,
) -> None:
    """Start a transfer or a micro-factory production run that restocks a location."""
    if kind not in ("transfer", "production"):
        raise _fail("--kind is transfer or production")
    with _unit_of_work() as (session, clock):
        movement = start_movement(session, clock=clock, kind=MovementKind(kind),
                                  source_code=source, destination_code=destination,
                                  variant_id=variant, quantity=quantity, lead_hours=lead_hours)
        due = movement.due_at
    typer.echo(f"{kind} started: {quantity} units due {due:%Y-%m-%d %H:%M} UTC")


@fulfilment_app.command("jobs", epilog="Example: dropline fulfilment jobs")
def jobs() -> None:
    """Complete due transfers and production runs, and plan windows past their cutoff."""
    report = run_fulfilment_jobs(services().db, clock=services().clock,
                                 solver=services().solver)
    typer.echo(f"{len(report.movements_completed)} movement(s) completed, "
               f"{len(report.windows_planned)} window(s) planned, "
               f"{len(report.windows_failed)} failed")


@fulfilment_app.command("decide", epilog="Example: dropline fulfilment decide")
def decide_orders() -> None:
    """Decide and allocate every paid order without a fulfilment decision (drop purchases once
    their drop has ended, counter sales, consumables), by the brand's rules, in one batch."""
    svc = services()
    report = decide_undecided_orders(svc.db, clock=svc.clock, geocoder=svc.geocoder,
                                     customer_facts=customer_delivery_facts,
                                     held_back=orders_in_live_drops)
    paths = ", ".join(f"{path} {count}" for path, count in sorted(report.decided.items()))
    Console().print(f"{report.total} orders decided ({paths or 'none undecided'}); "
                    f"{len(report.fallbacks)} after a fallback, "
                    f"{len(report.skipped)} decided meanwhile elsewhere")


# --- stock where demand is, and what fulfilment costs ----------------------------------------


def _variant_units(items: list[str], option: str) -> dict[int, int]:
    """"12=200" -> {12: 200}; a bad item is one line naming the option."""
    result = {}
    for item in items:
        variant, _, units = item.partition("=")
        if not (variant.isdigit() and units.isdigit()):
            raise _fail(f"{option} takes VARIANT=UNITS, e.g. 12=200 (got {item!r})")
        result[int(variant)] = int(units)
    return result


def _positioning(session: Any, clock: Any, *, days: int, cover: float, safety: float,
                 expect: list[str], cap: list[str]) -> Any:
    from dropline.fulfilment import positioning as P
    from dropline.fulfilment.stocking import plan_positioning

    estimate, caps = _variant_units(expect, "--expect"), _variant_units(cap, "--cap")
    drop = P.DropDemand(estimate={k: float(v) for k, v in estimate.items()}, cap=caps) \
        if estimate else None
    return plan_positioning(session, clock=clock, geocoder=services().geocoder, days=days,
                            cover_days=cover, safety=safety, drop=drop)


DaysOption = Annotated[int, typer.Option(min=1, max=365, help="Days of past orders to read.")]
CoverOption = Annotated[float, typer.Option(min=0.1, max=60, help="Days of demand to hold.")]
SafetyOption = Annotated[float, typer.Option(min=1, max=5, help="Safety factor on the demand.")]
ExpectOption = Annotated[list[str], typer.Option(
    help="A coming drop: the planner's estimate, VARIANT=UNITS (repeat).")]
CapOption = Annotated[list[str], typer.Option(help="The drop's cap, VARIANT=UNITS (repeat).")]


@position_app.command("plan", epilog="Example: dropline fulfilment position plan --days 28 "
                      "--cover 2 --expect 12=200 --cap 12=150")
def position_plan(days: DaysOption = 28, cover: CoverOption = 2.0, safety: SafetyOption = 1.3,
                  expect: ExpectOption = [], cap: CapOption = [],  # noqa: B006
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show how many units of each variant each hub should hold and the transfers and
    production runs (micro-factory, 48 h) that would get them there."""
    with _unit_of_work() as (session, clock):
        plan = _positioning(session, clock, days=days, cover=cover, safety=safety,
                            expect=expect, cap=cap)
    if as_json:
        typer.echo(json.dumps({
            "orders_read": plan.orders_read, "orders_in_reach": plan.orders_in_reach,
            "targets": [{"hub": t.hub, "variant_id": t.variant_id, "daily_units": t.daily_units,
                         "target": t.target, "on_hand": t.on_hand, "in_transit": t.in_transit}
                        for t in plan.targets],
            "proposals": [{"number": n, "kind": p.kind, "source": p.source,
                           "destination": p.destination, "variant_id": p.variant_id,
                           "quantity": p.quantity, "lead_hours": p.lead_hours,
                           "arrives_at": p.arrives_at.isoformat(), "late": p.late}
                          for n, p in enumerate(plan.proposals, start=1)]}))
        return
    console = Console()
    console.print(f"{plan.orders_read} paid orders in {plan.days} days, "
                  f"{plan.orders_in_reach} within a hub's reach")
    table = Table("#", "kind", "from", "to", "variant", "units", "lead (h)", "arrives (UTC)")
    for number, p in enumerate(plan.proposals, start=1):
        table.add_row(str(number), p.kind, p.source, p.destination, str(p.variant_id),
                      str(p.quantity), f"{p.lead_hours:g}", f"{p.arrives_at:%Y-%m-%d %H:%M}"
                      + (" (late)" if p.late else ""))
    console.print(table if plan.proposals else "nothing to move: every hub holds its target")


@position_app.command("accept", epilog="Example: dropline fulfilment position accept "
                      "--only 1 --only 3")
def position_accept(days: DaysOption = 28, cover: CoverOption = 2.0,
                    safety: SafetyOption = 1.3, expect: ExpectOption = [],  # noqa: B006
                    cap: CapOption = [],  # noqa: B006
                    only: Annotated[list[int], typer.Option(
                        min=1, help="Accept only these proposal numbers (repeat); all by "
                                    "default.")] = []) -> None:  # noqa: B006
    """Start the plan's proposals as transfers and production runs (the same plan as
    `position plan` with the same options, computed again now)."""
    from dropline.fulfilment.stocking import accept_positioning

    with _unit_of_work() as (session, clock):
        plan = _positioning(session, clock, days=days, cover=cover, safety=safety,
                            expect=expect, cap=cap)
        movements = accept_positioning(session, clock=clock, plan=plan,
                                       only=set(only) if only else None)
    units = sum(m.quantity for m in movements)
    typer.echo(f"{len(movements)} movement(s) started, {units} units")


@fulfilment_app.command("costs", epilog="Example: dropline fulfilment costs --weeks 4 --json")
def costs(weeks: Annotated[int, typer.Option(min=1, max=104, help="Weeks back from now.")] = 4,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Fulfilment cost per order by ISO week, path and location (hub-window orders from
    their planned routes once planned)."""
    from datetime import timedelta

    from dropline.fulfilment.stocking import cost_report

    with _unit_of_work() as (session, clock):
        now = clock.now()
        rows = cost_report(session, since=now - timedelta(weeks=weeks),
                           until=now + timedelta(seconds=1))
    if as_json:
        typer.echo(json.dumps([{"week": r.week, "path": r.path, "location": r.location_code,
                                "orders": r.orders, "cost_amount": r.cost_amount,
                                "cost_per_order": round(r.cost_per_order, 1),
                                "routed_orders": r.routed_orders} for r in rows]))
        return
    table = Table("week", "path", "location", "orders", "cost", "per order", "from routes")
    for r in rows:
        table.add_row(r.week, r.path, r.location_code, str(r.orders),
                      f"{r.cost_amount / 100:.2f}", f"{r.cost_per_order / 100:.2f}",
                      str(r.routed_orders))
    Console().print(table if rows else "no fulfilment decisions in that time")
