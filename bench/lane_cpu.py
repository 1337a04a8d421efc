"""Server CPU and Python calls per drop purchase request, in one process, for one or more checkouts.

    .venv/bin/python bench/lane_cpu.py                                   # this checkout
    .venv/bin/python bench/lane_cpu.py --checkout ../wt-before --checkout . --rounds 3 --json

Deterministic measures of the purchase path's per-request cost, for a machine too noisy for
throughput figures: for each checkout (its ``src`` and ``bench/drop_sellout.py``, so an older
commit is measured with its own code), in a fresh child process:

1. The bench database (``DROPLINE_BENCH_DATABASE``, default ``dl_perf_bench``) is recreated
   and seeded by that checkout's ``drop_sellout.seed`` (a drop with a waiting room, limit 2 per
   person, ``--requests`` shoppers); the gate's Redis database (``DROPLINE_BENCH_REDIS_URL``,
   default ``redis://127.0.0.1:6379/7``) is flushed: it must be one of your own.
2. The app is built by that checkout's ``dropline.web.app.create_app`` and driven through its
   ASGI callable (the object uvicorn calls; no sockets), with its lifespan entered and the
   garbage collector set as ``dropline.web.serving.worker_app`` sets a worker's.
3. Every shopper asks for an admission token (untimed), then all of them buy 2 units at once
   with the request the bench's client sends (``Host``, ``Content-Type``, ``Content-Length``,
   the session cookie, ``Idempotency-Key``; ``--browser-headers`` adds what a browser sends:
   ``Origin``, ``Sec-Fetch-*``, ``User-Agent``, ``Accept``...). There are units for five sixths
   of them, so about one in six is told sold out, as in ``drop_sellout.py``'s crowd.

Printed per run: ``cpu_us_per_request`` (``time.process_time``: every thread of the process,
the batch writer's included), ``loop_cpu_us_per_request`` (``time.thread_time`` of the event
loop's thread: the lane, the gate's client and the answers) and, from a second child's crowd
of the same size under cProfile (the loop's thread only), ``calls_per_request``
(``LANE_CPU_DUMP=FILE`` keeps the profile for ``pstats``); with the statuses
(201 paid, 409 sold out) and the young-generation collections. Runs alternate between the
checkouts (``--rounds``), so a slow phase of the machine falls on both. The figures are for
comparing checkouts side by side, not absolute. Needs PostgreSQL on 127.0.0.1 and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DB_NAME = os.environ.get("DROPLINE_BENCH_DATABASE", "dl_perf_bench")
REDIS_URL = os.environ.get("DROPLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
BROWSER_HEADERS = [
    (b"origin", b"http://127.0.0.1"), (b"sec-fetch-site", b"same-origin"),
    (b"sec-fetch-mode", b"cors"), (b"sec-fetch-dest", b"empty"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    b"Chrome/120.0 Safari/537.36"),
    (b"accept", b"application/json"), (b"accept-language", b"en-GB,en;q=0.9"),
    (b"accept-encoding", b"gzip, deflate, br"), (b"referer", b"http://127.0.0.1/drops/bench"),
]


# --- the child: one checkout, one run ---------------------------------------------------------


def _child(checkout: Path, requests: int, browser: bool, profiled: bool) -> dict[str, Any]:
    import asyncio
    import cProfile
    import gc
    import pstats
    import time
    import uuid

    sys.path[:0] = [str(checkout / "src"), str(checkout / "bench")]
    os.environ.update({
        "DROPLINE_RUN_SCHEDULER": "false", "DROPLINE_SECRET_KEY": uuid.uuid4().hex * 2,
        "DROPLINE_DROPS_IP_PER_MINUTE": str(10**9), "DROPLINE_REDIS_URL": REDIS_URL})
    import drop_sellout as bench  # the checkout's own

    bench.DB_NAME = DB_NAME
    bench.DB_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
    bench.REDIS_URL = REDIS_URL
    os.environ["DROPLINE_DATABASE_URL"] = bench.DB_URL
    import redis
    import uvloop

    redis.Redis.from_url(REDIS_URL).flushdb()  # the bench's own database (see the header)
    bench.recreate_database()
    # Units for five sixths of the shoppers, 2 each.
    ids = bench.seed(units=2 * (requests * 5 // 6), shoppers=requests)
    tokens = ids.pop("tokens")

    from dropline.web.app import create_app
    from dropline.web.serving import GC_THRESHOLDS

    app = create_app()
    cookie_name = "dl_session"
    drop_id = ids["drop_id"]
    extra = BROWSER_HEADERS if browser else []

    async def call(path: str, token: str, body: bytes, key: str | None) -> tuple[int, bytes]:
        headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        headers.append((b"cookie", f"{cookie_name}={token}".encode()))
        if key:
            headers.append((b"idempotency-key", key.encode()))
        headers += extra
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
                 "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8765), "state": {}}
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # as a server: nothing more until disconnect
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(chunks)

    def purchase_body(admission: str) -> bytes:
        # Older checkouts took the card itself ("card"), newer ones a payment method token.
        card_field = "payment_method" if isinstance(bench.CARD, str) else "card"
        return json.dumps({"lines": [{"variant_id": ids["drop_variant"],
                                      "quantity": bench.PER_PERSON}],
                           "admission_token": admission, card_field: bench.CARD,
                           "shipping_address": bench.ADDRESS}).encode()

    async def crowd(shoppers: list[str], admissions: list[str]) -> list[int]:
        answers = await asyncio.gather(*(
            call(f"/api/v1/drops/{drop_id}/purchase", token, purchase_body(admission),
                 uuid.uuid4().hex) for token, admission in zip(shoppers, admissions, strict=True)))
        return [status for status, _ in answers]

    def counted(statuses: list[int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for status in statuses:
            out[str(status)] = out.get(str(status), 0) + 1
        return out

    async def main() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            wait = (ids["starts_at"] - bench.datetime.now(bench.UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait + 0.1)
            admitted = await asyncio.gather(*(
                call(f"/api/v1/drops/{drop_id}/admission", token, b"", None)
                for token in tokens))
            if any(status != 200 for status, _ in admitted):
                raise SystemExit(f"admission: {counted([s for s, _ in admitted])}")
            admissions = [json.loads(body)["token"] for _, body in admitted]
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            if profiled:
                # Timed by the loop thread's CPU clock, so a dump's times are CPU, not waits.
                profile = cProfile.Profile(time.thread_time)
                profile.enable()
                statuses = await crowd(tokens, admissions)
                profile.disable()
                if os.environ.get("LANE_CPU_DUMP"):
                    profile.dump_stats(os.environ["LANE_CPU_DUMP"])
                calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
                return {"calls_per_request": round(calls / requests, 1),
                        "profiled_statuses": counted(statuses)}
            young = gc.get_stats()[0]["collections"]
            cpu, loop_cpu = time.process_time(), time.thread_time()
            statuses = await crowd(tokens, admissions)
            cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
            young = gc.get_stats()[0]["collections"] - young
            return {"cpu_us_per_request": round(cpu * 1e6 / requests, 1),
                    "loop_cpu_us_per_request": round(loop_cpu * 1e6 / requests, 1),
                    "young_collections": young, "statuses": counted(statuses),
                    "requests": requests}

    uvloop.install()
    return asyncio.run(main())


# --- the parent: children in turn --------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", action="append", type=Path,
                        help="a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--requests", type=int, default=2000, help="purchases per crowd")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per checkout, interleaved")
    parser.add_argument("--browser-headers", action="store_true",
                        help="send the headers a browser sends with a fetch() too")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profiled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child.resolve(), args.requests, args.browser_headers,
                                args.profiled)))
        return
    checkouts = [c.resolve() for c in (args.checkout or [HERE.parent])]
    python = sys.executable
    runs: dict[str, list[dict[str, Any]]] = {str(c): [] for c in checkouts}
    for round_no in range(args.rounds):
        order = checkouts if round_no % 2 == 0 else checkouts[::-1]
        for checkout in order:
            result: dict[str, Any] = {}
            for profiled in (False, True):  # a crowd timed, then another one profiled
                command = [python, str(Path(__file__).resolve()), "--child", str(checkout),
                           "--requests", str(args.requests)]
                command += ["--browser-headers"] if args.browser_headers else []
                command += ["--profiled"] if profiled else []
                done = subprocess.run(command, capture_output=True, text=True, cwd=checkout,
                                      env={k: v for k, v in os.environ.items()
                                           if k not in ("PYTHONPATH", "DROPLINE_DATABASE_URL")},
                                      timeout=900, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{checkout}: {done.stderr[-3000:]}")
                result |= json.loads(done.stdout.strip().splitlines()[-1])
            result["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
            runs[str(checkout)].append(result)
            if not args.json:
                print(checkout, json.dumps(result), flush=True)
    summary = {checkout: {
        name: statistics.median(r[name] for r in results)
        for name in ("cpu_us_per_request", "loop_cpu_us_per_request", "calls_per_request")}
        for checkout, results in runs.items()}
    print(json.dumps({"median": summary, "runs": runs}))


if __name__ == "__main__":
    main()
