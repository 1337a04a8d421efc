"""Benchmark cohort tables, curves and the shop LTV on a large synthetic shop; prints figures,
asserts nothing.

    .venv/bin/python bench/cohorts.py [--orders 100000] [--database URL] [--json]

Two timings:

* ``pure``: the column form built in memory (no database): summarise customers, the monthly
  cohort table cut by source and family, the heatmap and repeat curves, 90-day values;
* ``database``: the same orders written into a fresh database (a temporary SQLite file unless
  --database names an empty one), then what the API does per request: read the orders, lines,
  tagged events and refunds (``telemetry.service.load_customers``) and build the table; and
  the BG/NBD + Gamma-Gamma fit with the per-cut LTV.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

from dropline.telemetry.cohorts import (
    PurchaseLog,
    cohort_curves,
    cohort_table,
    summarise_customers,
    value_by,
)

SOURCES = np.array(["direct", "google", "instagram", "newsletter", "pop-up", "referral",
                    "tiktok"])
FAMILIES = np.array(["eau-de-parfum", "candles", "refills", "discovery-sets"])
PATHS = np.array(["central", "hub-window", "pop-up"])
AS_OF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def synthetic(orders: int, seed: int = 1) -> PurchaseLog:
    """~2.2 orders a customer over two years: first purchases spread evenly, repeats an
    exponential gap apart; 5 % of orders partly refunded a week later."""
    rng = np.random.default_rng(seed)
    customers = max(orders * 10 // 22, 1)
    first = AS_OF.timestamp() - rng.uniform(0, 730, customers) * 86_400
    counts = np.minimum(rng.geometric(0.45, customers), 20)
    cid = np.repeat(np.arange(1, customers + 1), counts)[:orders]
    nth = np.concatenate([np.arange(c) for c in counts])[:orders]
    gaps = rng.exponential(45 * 86_400, cid.size) * (nth > 0)
    at = (first[cid - 1] + np.cumsum(gaps) - np.maximum.accumulate(
        np.where(nth == 0, np.cumsum(gaps), 0))).astype(np.int64)
    keep = at <= AS_OF.timestamp()
    cid, at = cid[keep], at[keep]
    n = cid.size
    amount = rng.integers(1_500, 25_000, n)
    refunded = rng.random(n) < 0.05
    return PurchaseLog(
        customer_id=cid.astype(np.int64), at=at, amount=amount, order_id=np.arange(1, n + 1),
        family=FAMILIES[rng.integers(0, FAMILIES.size, n)],
        fulfilment_path=PATHS[rng.integers(0, PATHS.size, n)],
        source=SOURCES[(cid * 7919) % SOURCES.size], campaign=np.full(n, ""),
        drop_type=np.where(rng.random(n) < 0.1, "limited-edition", ""),
        subsidised=rng.random(n) < 0.2,
        refund_customer_id=cid[refunded].astype(np.int64),
        refund_at=np.minimum(at[refunded] + 7 * 86_400, int(AS_OF.timestamp())),
        refund_amount=amount[refunded] // 3, refund_order_id=np.arange(1, n + 1)[refunded])


def _median(func: Any, repeats: int = 5) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_pure(log: PurchaseLog) -> dict[str, Any]:
    summarise_s, customers = _median(lambda: summarise_customers(log, as_of=AS_OF))
    table_s, table = _median(lambda: cohort_table(customers, by=["source", "family"]))
    curves_s, _ = _median(lambda: (cohort_curves(customers, step_days=30, steps=12),
                                   cohort_curves(customers, step_days=7, steps=26)))
    values_s, _ = _median(lambda: value_by(customers, "drop_type"))
    return {"orders": len(log), "customers": len(customers), "cohort_rows": len(table.cohorts),
            "summarise_s": round(summarise_s, 4), "table_by_source_family_s": round(table_s, 4),
            "heatmap_and_repeat_curves_s": round(curves_s, 4),
            "value_by_drop_type_s": round(values_s, 4)}


def _fill(url: str, log: PurchaseLog) -> float:
    from dropline.catalog.models import ConditionGrade
    from dropline.catalog.service import VariantSpec, create_product
    from dropline.clock import FrozenClock
    from dropline.customers.models import Customer
    from dropline.db import Database
    from dropline.events.models import DomainEvent
    from dropline.orders.models import Order, OrderLine, OrderStatus
    from dropline.payments.models import Payment, PaymentStatus, Refund, RefundStatus

    started = time.perf_counter()
    db = Database(url)
    when = [dt.datetime.fromtimestamp(int(t), dt.UTC) for t in log.at]
    with db.transaction() as s:
        product = create_product(s, clock=FrozenClock(AS_OF), name="Bench", family_slug="candles",
                                 variants=[VariantSpec(sku="BENCH-1", name="one",
                                                       price_amount=1000, currency="GBP")])
        from dropline.catalog.service import variants_of

        variant = variants_of(s, [product.id])[product.id][0].id
        ids = np.unique(log.customer_id)
        s.execute(insert(Customer), [
            {"id": int(c), "email": f"c{c}@example.com", "name": "", "password_hash": "!",
             "acquisition_source": str(SOURCES[c % SOURCES.size]), "acquisition_campaign": "",
             "created_at": AS_OF - dt.timedelta(days=800)} for c in ids])
        refunded = dict(zip(log.refund_order_id.tolist(), log.refund_amount.tolist()))
        rows, lines, pays, events = [], [], [], []
        for i in range(len(log)):
            oid, amount = int(log.order_id[i]), int(log.amount[i])
            back = refunded.get(oid, 0)
            rows.append({"id": oid, "customer_id": int(log.customer_id[i]), "email": "x",
                         "status": OrderStatus.partially_refunded if back else OrderStatus.paid,
                         "currency": "GBP", "subtotal_amount": amount, "discount_amount": 0,
                         "shipping_amount": 0, "total_amount": amount, "refunded_amount": back,
                         "fulfilment_path": str(log.fulfilment_path[i]), "shipping_address": {},
                         "created_at": when[i], "paid_at": when[i]})
            lines.append({"order_id": oid, "variant_id": variant, "sku": "BENCH-1",
                          "product_name": "Bench", "variant_name": "one",
                          "product_family": str(log.family[i]),
                          "condition_grade": ConditionGrade.new, "unit_price_amount": amount,
                          "quantity": 1, "line_total_amount": amount})
            pays.append({"id": oid, "order_id": oid, "provider": "bench",
                         "idempotency_key": f"b{oid}", "provider_ref": f"ch{oid}",
                         "status": PaymentStatus.succeeded, "amount": amount, "currency": "GBP",
                         "created_at": when[i], "updated_at": when[i]})
            payload: dict[str, Any] = {"order_id": oid, "total_amount": amount}
            if log.drop_type[i]:
                payload["drop_type"] = str(log.drop_type[i])
            if log.subsidised[i]:
                payload["delivery_subsidised"] = True
            events.append({"event_id": str(uuid.uuid4()), "type": "order.paid",
                           "subject_type": "order", "subject_id": str(oid),
                           "customer_id": int(log.customer_id[i]), "occurred_at": when[i],
                           "payload": payload})
        for table, batch in ((Order, rows), (OrderLine, lines), (Payment, pays),
                             (DomainEvent, events)):
            for k in range(0, len(batch), 20_000):
                s.execute(insert(table), batch[k:k + 20_000])
        s.execute(insert(Refund), [
            {"order_id": int(o), "payment_id": int(o), "amount": int(a), "currency": "GBP",
             "reason": "bench", "status": RefundStatus.succeeded, "idempotency_key": f"r{o}",
             "actor": "bench", "created_at": dt.datetime.fromtimestamp(int(t), dt.UTC)}
            for o, a, t in zip(log.refund_order_id, log.refund_amount, log.refund_at)])
    db.dispose()
    return time.perf_counter() - started


def bench_database(log: PurchaseLog, url: str | None) -> dict[str, Any]:
    from dropline.db import Database
    from dropline.migrate import upgrade
    from dropline.telemetry import service
    from dropline.telemetry.shop_ltv import estimate_shop_ltv

    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    upgrade(url)
    fill_s = _fill(url, log)
    db = Database(url)

    def load() -> Any:
        with db.sessions() as session:
            return service.load_customers(session, as_of=AS_OF)

    load_s, (full_log, customers) = _median(load, 3)
    table_s, table = _median(lambda: cohort_table(customers, by=["source"]), 3)
    ltv_s, ltv = _median(lambda: estimate_shop_ltv(full_log, customers,
                                                   calibration_end=AS_OF.date(),
                                                   by=["fulfilment"]), 1)
    db.dispose()
    if tmp is not None:
        tmp.cleanup()
    return {"engine": url.split(":", 1)[0], "orders": len(full_log),
            "customers": len(customers), "write_orders_s": round(fill_s, 1),
            "load_from_database_s": round(load_s, 3), "cohort_table_s": round(table_s, 4),
            "request_total_s": round(load_s + table_s, 3),
            "ltv_fit_and_cuts_s": round(ltv_s, 3), "ltv_customers": ltv.customers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--database", help="an empty database URL (default: temporary SQLite)")
    parser.add_argument("--no-database", action="store_true", help="only the pure timing")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    log = synthetic(args.orders)
    out = {"pure": bench_pure(log)}
    if not args.no_database:
        out["database"] = bench_database(log, args.database)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, figures in out.items():
        print(name)
        for key, value in figures.items():
            print(f"  {key:30} {value}")


if __name__ == "__main__":
    main()
