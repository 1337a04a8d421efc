"""`dropline ltv`: fit the lifetime-value models to a purchase log from the command line."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from dropline.telemetry.ltv import LtvModel, fit_ltv_model, summarise_transactions
from dropline.telemetry.transactions import TransactionImportError, load_transactions

app = typer.Typer(
    help="Customer lifetime value: BG/NBD, Pareto/NBD and Gamma-Gamma models.",
    no_args_is_help=True,
)

USAGE_ERROR = 2  # the exit code Click uses for bad usage; bad input files are treated alike


class FileFormat(str, Enum):
    csv = "csv"
    cdnow = "cdnow"


@app.callback()
def _group() -> None:
    """Customer lifetime value: BG/NBD, Pareto/NBD and Gamma-Gamma models."""
    # A callback keeps `fit` a subcommand even while it is the only one.


def _fail(message: str) -> NoReturn:
    # soft_wrap: a long path must not be broken across lines (greppable, copyable).
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=USAGE_ERROR)


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r} is not a date (expected YYYY-MM-DD)")


def _finite(value: float) -> float | None:
    # JSON has no infinity: an undefined forecast (Gamma-Gamma q <= 1) is written as null.
    return value if math.isfinite(value) else None


def model_to_json(model: LtvModel, *, fit_seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "customers": model.customers,
        "repeaters": model.repeaters,
        "calibration_repeat_transactions": model.calibration_repeat_transactions,
        "bgnbd": asdict(model.bgnbd),
        "gamma_gamma": asdict(model.gamma_gamma)
        | {"population_mean_spend": _finite(model.gamma_gamma.population_mean_spend)},
        "fit_seconds": round(fit_seconds, 4),
    }
    if model.pareto_nbd is not None:
        out["pareto_nbd"] = asdict(model.pareto_nbd)
    if model.holdout is not None:
        h = model.holdout
        out |= {
            "holdout_weeks": h.weeks,
            "holdout_actual_transactions": h.actual_transactions,
            "holdout_predicted_transactions": h.predicted_transactions,
            "holdout_actual_revenue": round(h.actual_revenue, 2),
            "holdout_predicted_revenue": _finite(h.predicted_revenue),
        }
        if h.pareto_predicted_transactions is not None:
            out["holdout_pareto_predicted_transactions"] = h.pareto_predicted_transactions
    return out


def _print_tables(model: LtvModel, fit_seconds: float, console: Console) -> None:
    params = Table(title=f"LTV models: {model.customers:,} customers, "
                         f"{model.repeaters:,} repeaters, fitted in {fit_seconds:.2f} s")
    for column in ("model", "parameters", "log-likelihood", "note"):
        params.add_column(column)
    b, g = model.bgnbd, model.gamma_gamma
    params.add_row("BG/NBD", f"r={b.r:.4f} alpha={b.alpha:.4f} a={b.a:.4f} b={b.b:.4f}",
                   f"{b.loglik:.2f}", b.boundary_note or "")
    if (p := model.pareto_nbd) is not None:
        params.add_row("Pareto/NBD",
                       f"r={p.r:.4f} alpha={p.alpha:.4f} s={p.s:.4f} beta={p.beta:.4f}",
                       f"{p.loglik:.2f}", p.boundary_note or "")
    params.add_row("Gamma-Gamma", f"p={g.p:.4f} q={g.q:.4f} gamma={g.gamma:.4f}",
                   f"{g.loglik:.2f}", g.boundary_note or "")
    console.print(params)
    if (h := model.holdout) is not None:
        check = Table(title=f"Holdout, {h.weeks:g} weeks")
        for column in ("", "actual", "BG/NBD forecast"):
            check.add_column(column, justify="right")
        check.add_row("repeat transactions", f"{h.actual_transactions:,.0f}",
                      f"{h.predicted_transactions:,.1f}")
        check.add_row("revenue", f"{h.actual_revenue:,.2f}", f"{h.predicted_revenue:,.2f}")
        console.print(check)


@app.command(
    epilog="Example: dropline ltv fit --transactions CDNOW_master.txt --format cdnow "
    "--calibration-end 1997-09-30 --holdout-end 1998-06-30 --json",
)
def fit(
    transactions: Annotated[Path, typer.Option(
        help="Purchase log: CSV with customer_id,date,amount, or the CDNOW text format.")],
    calibration_end: Annotated[str, typer.Option(
        help="Last day (YYYY-MM-DD) of the calibration period, inclusive.")],
    holdout_end: Annotated[str | None, typer.Option(
        help="Last day of a holdout period after the calibration end, to check forecasts.")]
    = None,
    file_format: Annotated[FileFormat | None, typer.Option(
        "--format", help="File format; by default cdnow for .txt files, else csv.")] = None,
    pareto: Annotated[bool, typer.Option(
        help="Also fit the Pareto/NBD model.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
    = False,
) -> None:
    """Fit BG/NBD and Gamma-Gamma (and Pareto/NBD) to a purchase log.

    Purchases on one day count as one transaction; time is measured in weeks.
    """
    cal_end = _parse_date(calibration_end, "--calibration-end")
    hold_end = None if holdout_end is None else _parse_date(holdout_end, "--holdout-end")
    if hold_end is not None and hold_end <= cal_end:
        _fail("--holdout-end must be after --calibration-end")
    try:
        log = load_transactions(transactions,
                                format=None if file_format is None else file_format.value)
    except TransactionImportError as exc:
        _fail(str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {transactions}: {getattr(exc, 'strerror', None) or exc}")
    started = time.perf_counter()
    summary = summarise_transactions(log.customer_ids, log.dates, log.amounts,
                                     calibration_end=cal_end, holdout_end=hold_end)
    if len(summary) == 0:
        _fail(f"no customer made a first purchase on or before {cal_end}")
    try:
        model = fit_ltv_model(summary, with_pareto=pareto)
    except ValueError as exc:  # data the models cannot use, e.g. no repeat customer at all
        _fail(str(exc))
    fit_seconds = time.perf_counter() - started
    if as_json:
        typer.echo(json.dumps(model_to_json(model, fit_seconds=fit_seconds), indent=2))
    else:
        _print_tables(model, fit_seconds, Console())
