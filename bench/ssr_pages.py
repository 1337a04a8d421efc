"""SSR drop page: served from the in-process cache (200, and 304 on revalidation with the ETag)
vs rendered on every request, against a real uvicorn on SQLite demo data. Also the drop page's
weight (HTML + the CSS and JS it loads, raw and gzipped).

    .venv/bin/python bench/ssr_pages.py --requests 400

Prints JSON on the last line: per mode the median and p90 time to first byte (ms, measured as
the time until the response headers arrive on a kept-alive connection) and requests/s (one
client, sequential)."""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dropline.clock import SystemClock
from dropline.config import Settings
from dropline.db import Database
from dropline.demo import seed_demo
from dropline.drops import service as drops
from dropline.migrate import upgrade
from dropline.web.app import create_app
from tests.e2e.conftest import LiveServer


def _drop(db: Database, clock: SystemClock) -> int:
    from sqlalchemy import select

    from dropline.catalog.models import Variant

    with db.transaction() as session:
        existing = drops.list_drops(session, limit=1)
        if existing:
            return existing[0].id
        variants = list(session.scalars(select(Variant.id).order_by(Variant.id).limit(3)))
        starts = clock.now() + timedelta(hours=2)
        return drops.create_drop(
            session, clock=clock, slug="bench-drop", name="Midnight Fig",
            variants=[drops.VariantCap(v) for v in variants], shared_cap=500,
            per_person_limit=2, schedule=drops.DropSchedule(
                starts_at=starts, ends_at=starts + timedelta(days=1), early_access_minutes=30)
        ).id


def _time(client: httpx.Client, path: str, n: int, headers: dict[str, str] | None = None,
          before=None) -> tuple[list[float], float, int]:
    ttfb = []
    status = 0
    started = time.perf_counter()
    for _ in range(n):
        if before:
            before()
        t0 = time.perf_counter()
        with client.stream("GET", path, headers=headers) as response:
            ttfb.append((time.perf_counter() - t0) * 1000)
            response.read()
            status = response.status_code
    return ttfb, n / (time.perf_counter() - started), status


def _summary(samples: list[float], rate: float, status: int) -> dict[str, float]:
    ordered = sorted(samples)
    return {"status": status, "median_ms": round(statistics.median(ordered), 3),
            "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 3), "req_per_s": round(rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        settings = Settings(database={"url": url},
                            web={"run_scheduler": False, "secret_key": "bench"})
        db = Database(url)
        print("seeding demo data…", file=sys.stderr)
        seed_demo(db, settings=settings, customers=60, seed=7)
        drop_id = _drop(db, clock)
        app = create_app(settings, clock=clock, db=db, run_worker=False)
        server = LiveServer(app)
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                path = f"/drops/{drop_id}"
                first = client.get(path)
                etag = first.headers["etag"]
                n = args.requests
                _time(client, path, 20)  # warm connections and code paths
                cached = _time(client, path, n)
                revalidate = _time(client, path, n, headers={"If-None-Match": etag})
                uncached = _time(client, path, n, before=app.state.page_cache.clear)
                assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', first.text)
                assets += ["/static/pwa/outbox.js"]  # imported by app.js
                weights = {a: client.get(a).content for a in sorted(set(assets))}
        finally:
            server.stop()
            db.dispose()
    html = first.content
    total = len(html) + sum(len(b) for b in weights.values())
    total_gz = len(gzip.compress(html)) + sum(len(gzip.compress(b)) for b in weights.values())
    result = {
        "benchmark": "ssr_pages", "requests": args.requests, "page": "drop page",
        "cached_200": _summary(*cached), "cached_304": _summary(*revalidate),
        "uncached_render": _summary(*uncached),
        "speedup_cached_vs_uncached": round(statistics.median(uncached[0])
                                            / statistics.median(cached[0]), 1),
        "weight_bytes": {"html": len(html), **{a: len(b) for a, b in weights.items()},
                         "total": total, "total_gzip": total_gz},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
