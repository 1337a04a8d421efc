"""Drop-planning backtest on the demo brand's history: recommended caps vs the caps the brand
actually used.

    .venv/bin/python bench/drop_planning.py --json

1. Seeds the demo shop (``dropline demo``, seed 7, 300 customers) into a temporary SQLite
   file, as of a fixed "now", so the figures are reproducible.
2. Walks forward through the past drops: for each drop k after the first ``--warm-up``, fits
   the demand model and the attention cycle on what was known the day before drop k (earlier
   drops, touches before that day), forecasts the attention on k's day from its gap, and
   recommends a cap (target P(sell out) ``--target``) from the members and waitlist of the time.
3. Scores three cap policies against each drop's observed demand (units bought plus units
   asked for on its waitlist once it had sold out): the brand's own caps (before restocks),
   a naive rule (the previous drop's demand + 10 %), and the recommendation.

Prints a table, then the JSON figures on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dropline.clock import FrozenClock
from dropline.config import Settings
from dropline.db import Database
from dropline.demo import seed_demo
from dropline.migrate import upgrade
from dropline.planning import service
from dropline.planning.caps import DemandSignals, fit_demand, size_cap
from dropline.planning.model import fit_cycle

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _score(caps: list[int], demand: list[int]) -> dict[str, float]:
    left = sum(max(c - d, 0) for c, d in zip(caps, demand, strict=True))
    short = sum(max(d - c, 0) for c, d in zip(caps, demand, strict=True))
    made = sum(caps)
    return {"units_made": made, "units_left_over": left, "units_sold_from_stock": made - left,
            "left_over_share": round(left / made, 4) if made else 0.0,
            "sell_out_rate": round(sum(d >= c for c, d in zip(caps, demand, strict=True))
                                   / len(caps), 4),
            "units_wanted_beyond_cap": short}


def backtest(*, target: float, warm_up: int, seed: int,
             also: tuple[float, ...] = ()) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'planning.db'}"
        upgrade(url)
        db = Database(url)
        started = time.perf_counter()
        seed_demo(db, settings=Settings(database={"url": url},
                                        web={"run_scheduler": False}), customers=300,
                  seed=seed, clock=FrozenClock(NOW))
        seeded = time.perf_counter() - started
        with db.transaction() as session:
            history = service.load_history(session, now=NOW)
        db.dispose()
    outcomes = history.outcomes
    restocked = {f.slug: f.units_made_to_order for f in history.facts}
    series = history.series()
    rows = []
    for k in range(warm_up, len(outcomes)):
        drop = outcomes[k]
        known = outcomes[:k]
        cutoff = (drop.day - series.start).days  # touches before the drop's day only
        past_days = [(o.day - series.start).days for o in known]
        cycle = fit_cycle(series.counts[:cutoff], past_days, bootstrap=0)
        gap = (drop.day - known[-1].day).days
        waitlist = known[-1].unmet_units if known else 0
        model = fit_demand(known)
        signals_k = DemandSignals(drop.members_by_segment, waitlist=waitlist,
                                  expected_attention=cycle.expected_attention(gap))
        plan = size_cap(model, signals_k, target=target, seed=k)
        previous = known[-1].demand_units
        rows.append({"drop": drop.slug, "gap_days": gap, "demand": drop.demand_units,
                     "brand_cap": drop.cap - restocked.get(drop.slug, 0),
                     "naive_cap": max(1, round(previous * 1.1)),
                     "recommended_cap": plan.recommended.cap,
                     "forecast_mean": round(plan.demand_mean, 1),
                     "other_targets": {str(t): size_cap(model, signals_k, target=t,
                                                        seed=k).recommended.cap
                                       for t in also}})
    demand = [r["demand"] for r in rows]
    figures = {
        "drops_scored": len(rows), "warm_up_drops": warm_up, "target_p_sell_out": target,
        "seed_seconds": round(seeded, 2),
        "brand": _score([r["brand_cap"] for r in rows], demand),
        "naive_previous_plus_10pct": _score([r["naive_cap"] for r in rows], demand),
        "recommended": _score([r["recommended_cap"] for r in rows], demand),
        "recommended_at_other_targets": {
            str(t): _score([r["other_targets"][str(t)] for r in rows], demand) for t in also},
        "forecast_mean_abs_pct_error": round(sum(
            abs(r["forecast_mean"] - r["demand"]) / r["demand"] for r in rows) / len(rows), 4),
        "drops": rows,
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--also", default="0.5,0.65",
                        help="other targets to score (comma-separated)")
    parser.add_argument("--warm-up", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    also = tuple(float(t) for t in args.also.split(",") if t.strip())
    figures = backtest(target=args.target, warm_up=args.warm_up, seed=args.seed, also=also)
    if not args.json:
        print(f"{'drop':24} {'gap':>4} {'demand':>7} {'brand':>6} {'naive':>6} {'recomm.':>8}")
        for r in figures["drops"]:  # type: ignore[union-attr]
            print(f"{r['drop']:24} {r['gap_days']:>4} {r['demand']:>7} {r['brand_cap']:>6} "
                  f"{r['naive_cap']:>6} {r['recommended_cap']:>8}")
        for policy in ("brand", "naive_previous_plus_10pct", "recommended"):
            print(policy, figures[policy])
        for t, score in figures["recommended_at_other_targets"].items():  # type: ignore[union-attr]
            print(f"recommended at P(sell out) >= {t}", score)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
