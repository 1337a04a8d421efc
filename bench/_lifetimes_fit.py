"""Fit one lifetimes (0.11.3) model to a saved summary and print its parameters and timings.

Runs inside bench/.venv-lifetimes, never in the project's environment: lifetimes is only a
yardstick for bench/ltv_fit.py. Usage:

    python _lifetimes_fit.py SUMMARY.npz {bgnbd,gamma_gamma,pareto_nbd} REPEATS [--weighted]

SUMMARY.npz holds the arrays x, t_x, T, zbar (one entry per customer). With --weighted
the distinct rows are passed with counts as `weights`, the data reduction lifetimes
documents for large data sets; without it every customer is one row, its default use.
"""

import json
import statistics
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def main() -> None:
    path, model, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    weighted = "--weighted" in sys.argv[4:]
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    data = np.load(path)
    x, t_x, T, zbar = data["x"], data["t_x"], data["T"], data["zbar"]
    if model == "gamma_gamma":
        keep = (x > 0) & (zbar > 0)  # lifetimes rejects non-positive mean spend
        cols = [x[keep], zbar[keep]]
    else:
        cols = [x, t_x, T]
    weights = None
    if weighted:
        rows, counts = np.unique(np.column_stack(cols), axis=0, return_counts=True)
        cols, weights = list(rows.T), counts

    seconds = []
    for _ in range(repeats):
        fitter = {"bgnbd": BetaGeoFitter, "gamma_gamma": GammaGammaFitter,
                  "pareto_nbd": ParetoNBDFitter}[model]()
        started = time.perf_counter()
        if model == "gamma_gamma":
            fitter.fit(cols[0], cols[1], weights=weights)
        else:
            fitter.fit(cols[0], cols[1], cols[2], weights=weights)
        seconds.append(time.perf_counter() - started)
    print(json.dumps({
        "seconds": statistics.median(seconds),
        "runs": seconds,
        "params": {k: float(v) for k, v in fitter.params_.items()},
    }))


if __name__ == "__main__":
    main()
