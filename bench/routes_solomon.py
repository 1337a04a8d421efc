"""Route quality on the Solomon VRPTW set against best-known solutions (DIMACS convention).

    python bench/routes_solomon.py [--data DIR] [--seconds 10] [--seed 0] [--json]
                                   [--instances C101,R101,...]

For each `DIR/solomon/*.txt` with a `.sol` beside it, solves with PyVRP for the given seconds and
with the nearest-neighbour baseline, and prints cost, best-known cost and gap per instance, then
the mean gaps. Progress goes to stderr; with --json the figures go to stdout as JSON.
Figures only, no pass/fail: the target is a PyVRP mean gap of at most 1% at 10 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dropline.adapters.routing import NearestNeighbourSolver, PyVRPSolver
from dropline.fulfilment.solomon import dimacs_cost, read_best_known, read_solomon

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vrptw"


def gap_pct(cost: float, bks: float) -> float:
    return round(100 * (cost - bks) / bks, 2)


@dataclass(frozen=True)
class InstanceResult:
    instance: str
    bks: float
    cost: float
    gap_pct: float
    vehicles: int
    feasible: bool
    seconds: float
    baseline_cost: float
    baseline_gap_pct: float
    baseline_vehicles: int
    baseline_feasible: bool


def bench_instance(txt: Path, *, seconds: float, seed: int) -> InstanceResult:
    problem = read_solomon(txt)
    bks = read_best_known(txt.with_suffix(".sol")).cost

    started = time.perf_counter()
    plan = PyVRPSolver().solve(problem, max_seconds=seconds, seed=seed)
    elapsed = time.perf_counter() - started
    baseline = NearestNeighbourSolver().solve(problem, max_seconds=seconds)

    cost = dimacs_cost(problem, plan.sequences)
    baseline_cost = dimacs_cost(problem, baseline.sequences)
    return InstanceResult(
        instance=txt.stem,
        bks=bks,
        cost=cost,
        gap_pct=gap_pct(cost, bks),
        vehicles=len(plan.routes),
        feasible=plan.feasible,
        seconds=round(elapsed, 2),
        baseline_cost=baseline_cost,
        baseline_gap_pct=gap_pct(baseline_cost, bks),
        baseline_vehicles=len(baseline.routes),
        baseline_feasible=baseline.feasible,
    )


def summarise(rows: list[InstanceResult], *, seconds: float, seed: int) -> dict[str, object]:
    gaps = [r.gap_pct for r in rows]
    worst = max(rows, key=lambda r: r.gap_pct)
    return {
        "instances": len(rows),
        "seconds_per_instance": seconds,
        "seed": seed,
        "mean_gap_pct": round(statistics.fmean(gaps), 3),
        "median_gap_pct": round(statistics.median(gaps), 3),
        "worst_instance": worst.instance,
        "worst_gap_pct": worst.gap_pct,
        "at_bks": sum(1 for g in gaps if g <= 0),
        "all_feasible": all(r.feasible for r in rows),
        "baseline_mean_gap_pct": round(statistics.fmean(r.baseline_gap_pct for r in rows), 3),
        "baseline_all_feasible": all(r.baseline_feasible for r in rows),
    }


def print_table(console: Console, rows: list[InstanceResult], summary: dict[str, object]) -> None:
    table = Table(title=f"Solomon VRPTW, PyVRP {summary['seconds_per_instance']} s per instance")
    for header in ("instance", "BKS", "PyVRP", "gap %", "veh", "NN", "NN gap %", "NN veh"):
        table.add_column(header, justify="left" if header == "instance" else "right")
    for r in rows:
        table.add_row(
            r.instance,
            f"{r.bks:.1f}",
            f"{r.cost:.1f}" + ("" if r.feasible else " !"),
            f"{r.gap_pct:.2f}",
            str(r.vehicles),
            f"{r.baseline_cost:.1f}" + ("" if r.baseline_feasible else " !"),
            f"{r.baseline_gap_pct:.2f}",
            str(r.baseline_vehicles),
        )
    console.print(table)
    console.print(
        f"mean gap PyVRP {summary['mean_gap_pct']}% (median {summary['median_gap_pct']}%, "
        f"worst {summary['worst_instance']} {summary['worst_gap_pct']}%, "
        f"at BKS {summary['at_bks']}/{summary['instances']}); "
        f"nearest neighbour {summary['baseline_mean_gap_pct']}%",
        highlight=False,
    )
    if not (summary["all_feasible"] and summary["baseline_all_feasible"]):
        console.print("! marks an infeasible plan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="holds solomon/*.txt|.sol")
    parser.add_argument("--seconds", type=float, default=10.0, help="PyVRP time per instance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--instances", default="", help="comma-separated names, e.g. C101,R101")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    args = parser.parse_args(argv)

    err = Console(stderr=True)
    if args.seconds <= 0:
        err.print("error: --seconds must be positive")
        return 2
    folder = args.data / "solomon"
    files = sorted(p for p in folder.glob("*.txt") if p.with_suffix(".sol").exists())
    if args.instances:
        wanted = {name.strip().upper() for name in args.instances.split(",") if name.strip()}
        missing = wanted - {p.stem.upper() for p in files}
        if missing:
            err.print(f"error: not found in {folder}: {', '.join(sorted(missing))}")
            return 2
        files = [p for p in files if p.stem.upper() in wanted]
    if not files:
        err.print(f"error: no Solomon instances with .sol files in {folder}")
        return 2

    rows: list[InstanceResult] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("solving", total=len(files))
        for txt in files:
            progress.update(task, description=f"solving {txt.stem}")
            row = bench_instance(txt, seconds=args.seconds, seed=args.seed)
            rows.append(row)
            progress.console.print(
                f"{row.instance}: {row.cost} vs {row.bks} ({row.gap_pct}%), "
                f"baseline {row.baseline_cost} ({row.baseline_gap_pct}%)",
                highlight=False,
            )
            progress.advance(task)

    summary = summarise(rows, seconds=args.seconds, seed=args.seed)
    if args.json:
        payload = {"summary": summary, "instances": [asdict(r) for r in rows]}
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(Console(), rows, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
