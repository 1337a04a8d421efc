"""The drop batch writer alone: where a paid order's writing cost goes, without HTTP or Redis.

``bench/drop_sellout.py`` measures the whole hot path, on a shared 2-core VM whose speed moves
by 2-3x within an hour, so a 5 % change to the writer is lost in its noise. This bench drives
``drops.crowd.writer.write_batch`` directly (what the hot path's writer threads call), batch after
batch on one thread, with nothing else running, and reports per paid order:

* ``writer_cpu_ms``: CPU of the writing thread (``time.thread_time``: the batch's Python,
  psycopg's encoding), steadier than wall time on a busy host;
* ``postgres_cpu_ms``: CPU of every PostgreSQL process over the run (from /proc);
* ``wall_ms``: the batch's wall time per order.

Each figure is the median over the batches. The database is ``dropline_bench``, recreated and
seeded as by ``drop_sellout.py`` (a drop of ``--units`` units, one shopper per 2 units).
``--fillfactor N`` sets the fillfactor of ``orders`` and ``payments`` first: an experiment for
settling's row updates (HOT updates need free room on the page).

    .venv/bin/python bench/drop_batch.py --units 10000 --batch 500
    .venv/bin/python bench/drop_batch.py --units 10000 --batch 500 --fillfactor 70 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from drop_sellout import (  # after the path set-up
    ADDRESS,
    CARD,
    DB_URL,
    PER_PERSON,
    cpu_seconds,
    recreate_database,
    seed,
    settle_database,
    verify,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: .venv/bin/python bench/drop_batch.py --units 10000 --batch 500",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=10_000, help="the drop's cap")
    parser.add_argument("--batch", type=int, default=500, help="orders per batch")
    parser.add_argument("--fillfactor", type=int, default=0,
                        help="fillfactor of orders and payments (10-100; default: unchanged)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    if args.fillfactor and not 10 <= args.fillfactor <= 100:
        parser.error("--fillfactor must be between 10 and 100")
    log = (lambda *a: None) if args.json else print

    from sqlalchemy import text

    from dropline.adapters.payments import LocalCardProvider
    from dropline.bootstrap import install_listeners
    from dropline.clock import FrozenClock
    from dropline.config import Settings
    from dropline.db import Database
    from dropline.drops.crowd.writer import Job, write_batch
    from dropline.drops.models import SHARED_POOL, HoldSource
    from dropline.payments.provider import Card

    install_listeners()  # the audit trail's registry, as in the app (record_bulk reads it)

    recreate_database()
    shoppers = args.units // PER_PERSON
    ids = seed(units=args.units, shoppers=shoppers, queue=False)
    db = Database(DB_URL)
    if args.fillfactor:
        with db.transaction() as session:
            for table in ("orders", "payments"):
                session.execute(text(f"ALTER TABLE {table} SET (fillfactor = {args.fillfactor})"))
    with db.transaction() as session:
        customer_ids = session.scalars(text("SELECT id FROM customers ORDER BY id")).all()
    clock = FrozenClock(ids["starts_at"] + timedelta(seconds=1))  # the drop is live
    settings = Settings(database={"url": DB_URL})
    provider = LocalCardProvider(db.sessions, clock)
    card = Card(**CARD)
    jobs = [Job(drop_id=ids["drop_id"], customer_id=cid, lines=[(ids["drop_variant"], PER_PERSON)],
                pools={SHARED_POOL: PER_PERSON}, card=card, shipping_address=ADDRESS,
                reference=f"bench-batch-{cid}", source=HoldSource.direct)
            for cid in customer_ids]
    settle_database()
    log(f"{len(jobs)} orders in batches of {args.batch} ({args.units} units)")

    per_order: dict[str, list[float]] = {"writer_cpu_ms": [], "postgres_cpu_ms": [],
                                         "wall_ms": []}
    started = time.perf_counter()
    for i in range(0, len(jobs), args.batch):
        batch = jobs[i:i + args.batch]
        pg_before, cpu_before, wall_before = (cpu_seconds(-1)["postgres"], time.thread_time(),
                                              time.perf_counter())
        write_batch(db, clock=clock, settings=settings, provider=provider, jobs=batch)
        wall, cpu = time.perf_counter() - wall_before, time.thread_time() - cpu_before
        pg = cpu_seconds(-1)["postgres"] - pg_before
        per_order["writer_cpu_ms"].append(cpu * 1000 / len(batch))
        per_order["postgres_cpu_ms"].append(pg * 1000 / len(batch))
        per_order["wall_ms"].append(wall * 1000 / len(batch))
        log(f"batch {i // args.batch + 1}: {len(batch)} orders, {wall * 1000:.0f} ms "
            f"(writer CPU {cpu * 1000:.0f} ms, PostgreSQL CPU {pg * 1000:.0f} ms)")
    seconds = time.perf_counter() - started
    outcomes = sorted({(job.outcome or ("none",))[0] for job in jobs})
    db.dispose()
    checks = verify(ids, units=args.units)["drop"]
    result = {
        **{name: round(statistics.median(values), 4) for name, values in per_order.items()},
        "orders_per_s": round(len(jobs) / seconds, 1), "orders": len(jobs),
        "batch": args.batch, "batches": len(per_order["wall_ms"]), "outcomes": outcomes,
        "sold": checks["sold"], "oversold": checks["oversold"],
        "lost_paid_orders": checks["lost_paid_orders"],
        "slots_remaining": checks["slots_remaining"], "fillfactor": args.fillfactor or None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
