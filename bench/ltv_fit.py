"""Benchmark the LTV model fits against the `lifetimes` package; prints figures, asserts nothing.

    .venv/bin/python bench/ltv_fit.py [--data DIR] [--customers N] [--repeats K] [--json]

Two data sets:

* ``cdnow_master``: the full CDNOW cohort (23,570 customers, ``CDNOW_master.txt`` under
  --data), calibration to 1997-09-30;
* ``synthetic``: N customers (default 1,000,000) drawn from the BG/NBD + Gamma-Gamma
  generative process at the CDNOW parameters, acquired over 12 weeks from 1997-01-01,
  purchases rounded to days, same calendar split.

For each, Dropline's fits are timed (median of K runs) on the summary built by
`summarise_transactions`, and the same summary is handed to lifetimes 0.11.3 in its own
virtualenv (bench/.venv-lifetimes, created on first use; lifetimes is no dependency of
Dropline) through bench/_lifetimes_fit.py, per customer (its default use) and, for the
large set, also with the aggregated-rows `weights` it supports. Both sides run with BLAS
pinned to one thread: on small problems L-BFGS-B's tiny BLAS calls otherwise spend more
time waking threads than computing, which made timings swing tenfold.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads; see the module docstring

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

from dropline.telemetry.ltv import (
    CustomerSummary,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    summarise_transactions,
)
from dropline.telemetry.ltv_fit import (
    bgnbd_loglik_terms,
    gamma_gamma_loglik_terms,
    pareto_loglik_terms,
)
from dropline.telemetry.transactions import load_transactions

BENCH = Path(__file__).resolve().parent
LIFETIMES_VENV = BENCH / ".venv-lifetimes"
LIFETIMES_REQUIREMENTS = ["lifetimes==0.11.3", "pandas==3.1.1", "scipy==1.17.1", "setuptools"]
OUT = BENCH / "out"
CALIBRATION_END = np.datetime64("1997-09-30")
HOLDOUT_END = np.datetime64("1998-06-30")
START = np.datetime64("1997-01-01")
# Full-cohort CDNOW estimates (shared/data/ltv/SOURCES.md): the synthetic truth.
TRUE_BGNBD = {"r": 0.2516, "alpha": 4.7889, "a": 0.7234, "b": 2.1611}
TRUE_GG = {"p": 6.2754, "q": 3.6245, "gamma": 14.9837}

err = Console(stderr=True)


def simulate_population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event log (customer, day, amount) of n customers from BG/NBD + Gamma-Gamma."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 84, n)  # acquisition day offset from START
    horizon = (HOLDOUT_END - START).astype(int) - first  # days observable after acquisition
    lam = rng.gamma(TRUE_BGNBD["r"], 1.0 / TRUE_BGNBD["alpha"], n)  # purchases per week
    p = rng.beta(TRUE_BGNBD["a"], TRUE_BGNBD["b"], n)
    # A customer stops after the k-th repeat purchase with k ~ Geometric(p); the purchases
    # of a still-active customer are a Poisson process, uniform in the window given their number.
    k = rng.geometric(p)
    count = rng.poisson(lam * horizon / 7.0)
    owner = np.repeat(np.arange(n), count)
    offset = rng.random(owner.size) * np.repeat(horizon, count)
    order = np.lexsort((offset, owner))
    owner, offset = owner[order], offset[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    kept = rank < k[owner]
    owner, offset = owner[kept], offset[kept]
    customer = np.concatenate([np.arange(n), owner])
    day = START + np.concatenate([first, first[owner] + np.floor(offset).astype(np.int64)])
    nu = rng.gamma(TRUE_GG["q"], 1.0 / TRUE_GG["gamma"], n)  # Gamma-Gamma spend scale
    amount = rng.gamma(TRUE_GG["p"], 1.0 / nu[customer])
    return customer, day, np.round(amount, 2)


def median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    runs, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), [round(r, 4) for r in runs], result


def ensure_lifetimes_venv() -> Path | None:
    python = LIFETIMES_VENV / "bin" / "python"
    if python.exists():
        return python
    err.print(f"creating {LIFETIMES_VENV} with {' '.join(LIFETIMES_REQUIREMENTS)}")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LIFETIMES_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *LIFETIMES_REQUIREMENTS],
                       check=True)
    except subprocess.CalledProcessError as exc:
        err.print(f"[yellow]lifetimes unavailable: {exc}[/]")
        return None
    return python


def lifetimes_fit(python: Path, npz: Path, model: str, repeats: int, *, weighted: bool,
                  timeout: float) -> dict[str, Any]:
    cmd = [str(python), str(BENCH / "_lifetimes_fit.py"), str(npz), model, str(repeats)]
    try:
        done = subprocess.run(cmd + (["--weighted"] if weighted else []), capture_output=True,
                              text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout)


def loglik(model: str, params: dict[str, float], s: CustomerSummary) -> float:
    if model == "bgnbd":
        return float(bgnbd_loglik_terms(params["r"], params["alpha"], params["a"], params["b"],
                                        s.x, s.t_x, s.T).sum())
    if model == "pareto_nbd":
        return float(pareto_loglik_terms(params["r"], params["alpha"], params["s"],
                                         params["beta"], s.x, s.t_x, s.T).sum())
    keep = (s.x > 0) & (s.zbar > 0)
    return float(gamma_gamma_loglik_terms(params["p"], params["q"], params["v"]
                                          if "v" in params else params["gamma"],
                                          s.x[keep], s.zbar[keep]).sum())


def bench_dataset(name: str, s: CustomerSummary, extra: dict[str, Any], args: argparse.Namespace,
                  progress: Progress, python: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {"customers": len(s), "repeaters": int((s.x > 0).sum()),
                           "distinct_rfm_rows": int(np.unique(np.column_stack(
                               [s.x, s.t_x, s.T]), axis=0).shape[0]), **extra}
    fits = {"bgnbd": lambda: fit_bgnbd(s.x, s.t_x, s.T),
            "gamma_gamma": lambda: fit_gamma_gamma(s.x, s.zbar),
            "pareto_nbd": lambda: fit_pareto_nbd(s.x, s.t_x, s.T)}
    npz = OUT / f"{name}_summary.npz"
    np.savez(npz, x=s.x, t_x=s.t_x, T=s.T, zbar=s.zbar)
    big = len(s) > 100_000
    for model, fn in fits.items():
        task = progress.add_task(f"{name}: dropline {model}", total=None)
        sec, runs, res = median_seconds(fn, args.repeats)
        progress.remove_task(task)
        params = {k: getattr(res, k) for k in ("r", "alpha", "a", "b", "s", "beta", "p", "q",
                                               "gamma") if hasattr(res, k)}
        entry: dict[str, Any] = {"dropline": {"seconds": round(sec, 4), "runs": runs,
                                              "params": params, "loglik": res.loglik,
                                              "at_boundary": res.at_boundary}}
        if model == "bgnbd" and s.holdout_x is not None:
            entry["dropline"]["holdout_predicted"] = float(expected_purchases(
                res, s.holdout_weeks, s.x, s.t_x, s.T).sum())
            entry["dropline"]["holdout_actual"] = float(s.holdout_x.sum())
        if python is not None:
            variants = [("lifetimes", False)] + ([("lifetimes_weighted", True)] if big else [])
            for label, weighted in variants:
                task = progress.add_task(f"{name}: {label} {model}", total=None)
                # lifetimes' Pareto/NBD on a million rows takes minutes per run: once is enough
                reps = 1 if big else args.repeats
                lt = lifetimes_fit(python, npz, model, reps, weighted=weighted,
                                   timeout=args.lifetimes_timeout)
                progress.remove_task(task)
                if "params" in lt:
                    lt["loglik"] = loglik(model, lt["params"], s)
                    lt["speedup"] = round(lt["seconds"] / sec, 1)
                    lt["seconds"] = round(lt["seconds"], 4)
                entry[label] = lt
        out[model] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ltv"),
                        help="folder with CDNOW_master.txt (default ../shared/data/ltv)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--lifetimes-timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    python = None if args.no_lifetimes else ensure_lifetimes_venv()
    report: dict[str, Any] = {
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "scipy": scipy.__version__, "cpus": os.cpu_count(),
                        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
                        "repeats": args.repeats, "lifetimes": None if python is None else
                        "0.11.3 (" + ", ".join(LIFETIMES_REQUIREMENTS[1:3]) + ")"},
    }
    with Progress(SpinnerColumn(), *Progress.get_default_columns()[:1], TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        master = args.data / "CDNOW_master.txt"
        if master.exists():
            task = progress.add_task("cdnow: load + summarise", total=None)
            load_s, _, log = median_seconds(lambda: load_transactions(master), args.repeats)
            sum_s, _, s = median_seconds(lambda: summarise_transactions(
                log.customer_ids, log.dates, log.amounts, calibration_end=CALIBRATION_END,
                holdout_end=HOLDOUT_END), args.repeats)
            progress.remove_task(task)
            report["cdnow_master"] = bench_dataset(
                "cdnow_master", s, {"rows": len(log), "load_seconds": round(load_s, 4),
                                    "summarise_seconds": round(sum_s, 4)}, args, progress, python)
        else:
            err.print(f"[yellow]{master} not found: skipping the CDNOW data set[/]")

        task = progress.add_task(f"synthetic: simulate {args.customers:,} customers", total=None)
        customer, day, amount = simulate_population(args.customers, args.seed)
        csv_path = OUT / "synthetic_transactions.csv"
        with csv_path.open("w") as fh:
            fh.write("customer_id,date,amount\n")
            fh.write("\n".join(f"{c},{d},{a:.2f}" for c, d, a in
                               zip(customer.tolist(), day.astype(str).tolist(), amount.tolist())))
            fh.write("\n")
        progress.remove_task(task)
        task = progress.add_task("synthetic: load csv + summarise", total=None)
        load_s, _, _ = median_seconds(lambda: load_transactions(csv_path), 1)
        sum_s, _, s = median_seconds(lambda: summarise_transactions(
            customer, day, amount, calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END),
            args.repeats)
        progress.remove_task(task)
        report["synthetic"] = bench_dataset(
            "synthetic", s, {"rows": int(customer.size), "true_bgnbd": TRUE_BGNBD,
                             "true_gamma_gamma": TRUE_GG, "load_csv_seconds": round(load_s, 4),
                             "summarise_seconds": round(sum_s, 4)}, args, progress, python)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        Console().print_json(data=report)


if __name__ == "__main__":
    main()
