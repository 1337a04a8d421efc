"""`dropline routes`: plan delivery routes from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dropline.adapters.routing import PyVRPSolver
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
    plan = PyVRPSolver().solve(problem, max_seconds=seconds, seed=seed)
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
