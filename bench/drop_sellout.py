"""Drop sell-out benchmark: the real server on PostgreSQL, a flash crowd over HTTP.

    .venv/bin/python bench/drop_sellout.py --json
    .venv/bin/python bench/drop_sellout.py --units 5000 --shoppers 3000 --workers 2 --json
    .venv/bin/python bench/drop_sellout.py --no-redis --json      # the database path
    .venv/bin/python bench/drop_sellout.py --sqlite /tmp/bench.db --json   # on SQLite
    .venv/bin/python bench/drop_sellout.py --provider stripe --json   # charges via localstripe

What it does, in one run:

1. (Re)creates the database ``dropline_bench`` (``DROPLINE_BENCH_DATABASE``) on 127.0.0.1 and
   migrates it to every head.
2. Seeds a location, one product with three variants (one for the drop, one for each
   baseline), a drop of ``--units`` units (limit 2 per person, waiting room on, admission rate
   high enough to admit the whole crowd at once), the same number of units as one ordinary
   stock row for each baseline, and ``--shoppers`` customers with sessions, written in bulk with one
   precomputed argon2 hash (signing 3,000 people up through the API would measure argon2).
3. Starts the server as ``dropline serve --workers`` does (``dropline.web.serving``: uvicorn's
   supervisor, each worker listening on a ``SO_REUSEPORT`` socket of its own so the kernel
   spreads the crowd's connections evenly; ``--shared-socket`` for uvicorn's one shared socket,
   where one worker of two was seen taking two thirds of them), plus two bench-only routes:
   the baselines. ``--no-redis`` starts it without Redis: the drop's purchases then take the
   database path (``drops.batched``, and ``drops.flows`` for what it leaves) through the same
   entry point, as a server without Redis.
4. Every shopper has joined the waiting room before the start (seeded in bulk, not timed).
   At the start all of them ask for an admission token (timed apart: ``admission_seconds``),
   then all at once buy 2 units with the express purchase endpoint (``Idempotency-Key``;
   gate, order, card charge, settle). Timed from the first purchase request to the last
   response: ``units_per_s``; ``p50_ms``/``p99_ms`` are the purchase request latencies.
   ``units_per_s_with_admission`` counts both phases. The purchase path runs on the Redis gate
   and batched writes (``drops.crowd``: its gate and batch writer; Redis DB 3, or
   ``DROPLINE_BENCH_REDIS_URL``, prefix ``dl:``, whose keys alone are flushed first), the
   server is uvicorn with uvloop and httptools, and the crowd is ``bench/leanhttp.py`` over
   keep-alive connections opened before the timed part: one per shopper by default, as a
   crowd of browsers has (``--connections N`` makes the crowd share N; with 256 shared
   connections at most 256 purchases are ever in flight, so the server's batches stay small
   and the run measures the client's concurrency, not the server).
5. The same crowd then buys the baseline: ``POST /bench/baseline/checkout``, the classic
   design (as Saleor/Vendure/Medusa): ``SELECT ... FOR UPDATE`` on the one stock row, decrement,
   write the order in that same transaction, commit, charge, settle. Same lean order writing
   and settling code as the drop batches (``orders.bulk.insert_orders`` / ``settle_orders``),
   same async endpoint shape and session cache; only the design differs (one hot row and a
   transaction per order vs a Redis gate and many orders per transaction). Then the tight
   classic variant, ``POST /bench/tight/checkout``: the order written first, then one
   conditional ``UPDATE ... WHERE on_hand >= q RETURNING`` as the transaction's last
   statement, so the row lock is held for that round trip and the commit. ``ratio`` is the
   drop against the first baseline, ``ratio_best_baseline`` against the better of the two.
   Before each timed crowd the database is settled (``VACUUM ANALYZE``, ``CHECKPOINT``, a
   second of quiet), so autovacuum and checkpoints woken by the untimed parts stay out of it.
6. Checks the database: ``oversold`` (units in paid orders beyond the cap) and
   ``lost_paid_orders`` (succeeded provider charges without a paid order, plus paid orders
   without a succeeded charge), for every run, and ``undersold``: units left at the end of a
   crowd in which a shopper was told sold out.

``--provider stripe`` runs the same crowds with the server on the Stripe provider against
localstripe (started for the run on a free port, or the server ``--stripe-api-base`` names):
every order then makes a payment round trip over HTTP to it (a PaymentIntent, confirmed), the
drop's batches ``DROPLINE_PAYMENTS_STRIPE_BATCH_CONCURRENCY`` at a time, and
``lost_paid_orders`` is checked against localstripe's PaymentIntent list. localstripe is one
single-threaded Python process on the same cores, so the figure is a floor set by it, not by
Stripe; the JSON says which provider ran (``settings.provider``).

The last line printed is one JSON object. Traffic goes only to 127.0.0.1; every loop is
bounded. Settings used are stated in the JSON (``settings``); PostgreSQL runs with its defaults
(``synchronous_commit`` on) unless ``--async-commit`` is given, which sets
``synchronous_commit=off`` for the server's connections only and says so in the output.
"""

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from leanhttp import Pool

from dropline.web.serving import GC_THRESHOLDS

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_NAME = os.environ.get("DROPLINE_BENCH_DATABASE", "dropline_bench")  # recreated by each run
DB_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
CARD = "pm_card_visa"  # Stripe's test payment method; the local provider knows it too
STRIPE_SECRET_KEY = "sk_test_dropline_bench"  # localstripe takes any sk_ key
ADDRESS = {"name": "Bench Shopper", "line1": "1 Fournier St", "city": "London",
           "postcode": "E1 6QE", "country": "GB"}
PER_PERSON = 2
MAX_ATTEMPTS = 6  # per request: retries of 409 in-flight / 503 / connection errors
# The gate's Redis database (DB 3 unless DROPLINE_BENCH_REDIS_URL names another); unused with
# --no-redis.
REDIS_URL = os.environ.get("DROPLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
REDIS_PREFIX = "dl:"  # the gate's default prefix; only keys under it are flushed


def flush_bench_keys() -> int:
    """Deletes the bench's own Redis keys (``REDIS_URL``, prefix ``dl:``): the drop's gate state of a
    previous run (the database is recreated, so ids repeat) and rate-limit windows."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])
    return len(keys)


# --- the baseline: bench-only, mounted by create_bench_app ------------------------------------


def baseline_checkout(db: Any, *, clock: Any, settings: Any, provider: Any, customer_id: int,
                      variant_id: int, location_id: int, quantity: int, card: Any,
                      shipping_address: dict[str, Any], checkout_reference: str
                      ) -> tuple[int, Any]:
    """The classic design: one transaction per checkout that locks the one stock row
    (``SELECT ... FOR UPDATE``), decrements it and writes the order, then the charge, then a
    settling transaction. Orders are written and settled by the same lean code as the drop
    batches (``orders.bulk.insert_orders`` / ``settle_orders``, one order per call), so the
    ratio measures the design (one hot row, a transaction per order), not ORM overhead.
    Idempotent on the checkout reference (unique), like the drop path."""
    from sqlalchemy import select, text

    from dropline.drops.crowd import writer
    from dropline.errors import OutOfStock, PaymentDeclined
    from dropline.orders.bulk import BulkOrder, insert_orders, settle_orders
    from dropline.orders.models import Order
    from dropline.webhooks.bulk import record_events

    job = BulkOrder(customer_id=customer_id, lines=[(variant_id, quantity)], card=card,
                    shipping_address=shipping_address, reference=checkout_reference)
    with db.transaction() as session:
        found = session.execute(select(Order.id, Order.status).where(
            Order.checkout_reference == checkout_reference)).first()
        if found is not None:
            return 200, {"id": found.id, "status": found.status.value}
        on_hand = session.execute(text(
            "SELECT on_hand FROM stock_levels WHERE location_id = :l AND variant_id = :v "
            "FOR UPDATE"), {"l": location_id, "v": variant_id}).scalar()
        if on_hand is None or on_hand < quantity:
            raise OutOfStock("sold out")
        session.execute(text("UPDATE stock_levels SET on_hand = on_hand - :q "
                             "WHERE location_id = :l AND variant_id = :v"),
                        {"q": quantity, "l": location_id, "v": variant_id})
        catalog = writer._catalog(session, {variant_id})
        now = clock.now()
        customers, created = insert_orders(session, now=now, settings=settings,
                                           catalog=catalog, location_id=location_id,
                                           orders=[job])
        record_events(session, now=now, events=created)
    result = provider.charge(amount=job.totals.total_amount, currency=job.totals.currency,
                             card=card, idempotency_key=job.payment_key)

    def give_back(declined: list[Any]) -> None:
        session.execute(text("UPDATE stock_levels SET on_hand = on_hand + :q "
                             "WHERE location_id = :l AND variant_id = :v"),
                        {"q": quantity, "l": location_id, "v": variant_id})

    with db.transaction() as session:
        now = clock.now()
        record_events(session, now=now, events=settle_orders(
            session, now=now, provider_name=provider.name, orders=[job], results=[result],
            customers=customers, on_declined=give_back))
    if job.outcome[0] != "paid":
        raise PaymentDeclined("the card was declined")
    return 201, job.outcome[1]


def tight_checkout(db: Any, *, clock: Any, settings: Any, provider: Any, customer_id: int,
                   variant_id: int, location_id: int, quantity: int, card: Any,
                   shipping_address: dict[str, Any], checkout_reference: str
                   ) -> tuple[int, Any]:
    """The classic design done tightly: the order, its lines, payment and events written
    first, then the stock taken by one conditional ``UPDATE ... WHERE on_hand >= q RETURNING``
    as the transaction's last statement, so the row lock is held for that one round trip and
    the commit (none of ``baseline_checkout``'s reads and inserts under it). A shopper who
    finds the row short rolls the order back with it. An unlocked read first turns shoppers
    away cheaply once the row is empty. Charge and settle as ``baseline_checkout``."""
    from sqlalchemy import select, text

    from dropline.drops.crowd import writer
    from dropline.errors import OutOfStock, PaymentDeclined
    from dropline.orders.bulk import BulkOrder, insert_orders, settle_orders
    from dropline.orders.models import Order
    from dropline.webhooks.bulk import record_events

    job = BulkOrder(customer_id=customer_id, lines=[(variant_id, quantity)], card=card,
                    shipping_address=shipping_address, reference=checkout_reference)
    stock = {"q": quantity, "l": location_id, "v": variant_id}
    with db.transaction() as session:
        found = session.execute(select(Order.id, Order.status).where(
            Order.checkout_reference == checkout_reference)).first()
        if found is not None:
            return 200, {"id": found.id, "status": found.status.value}
        if session.execute(text("SELECT on_hand >= :q FROM stock_levels WHERE location_id = :l "
                                "AND variant_id = :v"), stock).scalar() is not True:
            raise OutOfStock("sold out")
        catalog = writer._catalog(session, {variant_id})
        now = clock.now()
        customers, created = insert_orders(session, now=now, settings=settings,
                                           catalog=catalog, location_id=location_id,
                                           orders=[job])
        record_events(session, now=now, events=created)
        if session.execute(text(
                "UPDATE stock_levels SET on_hand = on_hand - :q WHERE location_id = :l "
                "AND variant_id = :v AND on_hand >= :q RETURNING on_hand"), stock).first() is None:
            raise OutOfStock("sold out")  # rolls the order back
    result = provider.charge(amount=job.totals.total_amount, currency=job.totals.currency,
                             card=card, idempotency_key=job.payment_key)

    def give_back(declined: list[Any]) -> None:
        session.execute(text("UPDATE stock_levels SET on_hand = on_hand + :q "
                             "WHERE location_id = :l AND variant_id = :v"), stock)

    with db.transaction() as session:
        now = clock.now()
        record_events(session, now=now, events=settle_orders(
            session, now=now, provider_name=provider.name, orders=[job], results=[result],
            customers=customers, on_declined=give_back))
    if job.outcome[0] != "paid":
        raise PaymentDeclined("the card was declined")
    return 201, job.outcome[1]


def create_bench_app() -> Any:
    """``dropline.web.app.create_app`` plus the two baseline routes (bench only). Their
    endpoints are as lean as the drop's: async, the same cached session look-up (without
    Redis, the session dependency the database path uses, in the worker thread), the database
    work in a worker thread (a transaction per checkout is the design being measured)."""
    import anyio.to_thread
    from fastapi import Header, Request
    from fastapi.responses import JSONResponse

    from dropline.drops.crowd.wiring import hot_path
    from dropline.drops.schemas import HoldCheckout
    from dropline.idempotency.service import reference_for, validate_key
    from dropline.web.app import create_app
    from dropline.web.deps import optional_customer, require_customer

    app = create_app()
    services = app.state.services
    variants = {baseline_checkout: int(os.environ["BENCH_BASELINE_VARIANT"]),
                tight_checkout: int(os.environ["BENCH_TIGHT_VARIANT"])}
    location_id = int(os.environ["BENCH_BASELINE_LOCATION"])

    class BaselineBody(HoldCheckout):
        quantity: int = PER_PERSON

    async def checkout(design: Any, body: BaselineBody, request: Request,
                       idempotency_key: str | None) -> JSONResponse:
        hot = hot_path(app.state)
        customer_id = None
        if hot is not None:
            customer_id, _ = await hot.customer(
                request.cookies.get(services.settings.web.session_cookie_name))
        key = validate_key(idempotency_key)

        def run() -> tuple[int, Any]:
            who = customer_id or require_customer(optional_customer(request, services)).id
            return design(
                services.db, clock=services.clock, settings=services.settings,
                provider=services.payments, customer_id=who, variant_id=variants[design],
                location_id=location_id, quantity=body.quantity,
                card=services.payments.describe_card(body.payment_method),
                shipping_address=body.shipping_address.model_dump(),
                checkout_reference=reference_for(f"customer:{who}", key))

        status, payload = await anyio.to_thread.run_sync(run)
        return JSONResponse(payload, status_code=status)

    @app.post("/bench/baseline/checkout", include_in_schema=False)
    async def baseline(body: BaselineBody, request: Request,
                       idempotency_key: str | None = Header(None, alias="Idempotency-Key")
                       ) -> JSONResponse:
        return await checkout(baseline_checkout, body, request, idempotency_key)

    @app.post("/bench/tight/checkout", include_in_schema=False)
    async def tight(body: BaselineBody, request: Request,
                    idempotency_key: str | None = Header(None, alias="Idempotency-Key")
                    ) -> JSONResponse:
        return await checkout(tight_checkout, body, request, idempotency_key)

    return app


# --- set-up -------------------------------------------------------------------------------------


def use_sqlite(path: str) -> None:
    """``--sqlite``: the embedded default's engine, a SQLite file, instead of PostgreSQL."""
    global DB_URL
    DB_URL = f"sqlite:///{Path(path).resolve()}"


def recreate_database() -> None:
    from sqlalchemy import create_engine, text

    from dropline.migrate import upgrade

    if DB_URL.startswith("sqlite"):
        database = Path(DB_URL.removeprefix("sqlite:///"))
        for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            stale.unlink(missing_ok=True)
        upgrade(DB_URL)
        return
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DB_NAME}"))
    engine.dispose()
    upgrade(DB_URL)


def seed(*, units: int, shoppers: int, queue: bool = True) -> dict[str, Any]:
    from sqlalchemy import insert, select

    from dropline.catalog.service import VariantSpec, create_product, set_stock, variants_of
    from dropline.clock import SystemClock
    from dropline.customers.models import Customer, CustomerSession
    from dropline.db import Database
    from dropline.drops import service
    from dropline.drops.models import DropQueueEntry
    from dropline.drops.rules import queue_sort_key
    from dropline.locations.models import Location, LocationKind
    from dropline.security import hash_password, new_token, token_digest

    clock = SystemClock()
    db = Database(DB_URL)
    now = clock.now()
    with db.transaction() as session:
        location = Location(code="central", name="Central", kind=LocationKind.central_warehouse,
                            latitude=51.5, longitude=-0.1)
        session.add(location)
        session.flush()
        product = create_product(session, clock=clock, name="Midnight Fig", family_slug="edp",
                                 variants=[VariantSpec("FIG-DROP", "50 ml", 6500, "GBP"),
                                           VariantSpec("FIG-BASE", "50 ml", 6500, "GBP"),
                                           VariantSpec("FIG-TIGHT", "50 ml", 6500, "GBP")])
        drop_variant, base_variant, tight_variant = variants_of(session,
                                                                [product.id])[product.id]
        for stocked in (base_variant, tight_variant):
            set_stock(session, clock=clock, location_code="central", variant_id=stocked.id,
                      on_hand=units, actor="bench")
        drop = service.create_drop(
            session, clock=clock, slug="bench-drop", name="Bench drop",
            variants=[service.VariantCap(drop_variant.id)], shared_cap=units,
            per_person_limit=PER_PERSON, location_code="central",
            schedule=service.DropSchedule(
                starts_at=now + timedelta(seconds=5), ends_at=now + timedelta(hours=2),
                admission_per_minute=1_000_000, queue_enabled=queue, hold_ttl_seconds=600))
        ids = dict(drop_id=drop.id, drop_variant=drop_variant.id, base_variant=base_variant.id,
                   tight_variant=tight_variant.id,
                   location_id=location.id, starts_at=drop.starts_at)
    password_hash = hash_password("bench password 1")
    tokens = [new_token() for _ in range(shoppers)]
    with db.transaction() as session:
        session.execute(insert(Customer), [
            {"email": f"bench-{i}@example.com", "name": "", "password_hash": password_hash,
             "acquisition_source": "bench", "acquisition_campaign": "", "created_at": now}
            for i in range(shoppers)])
        customer_ids = session.scalars(select(Customer.id).order_by(Customer.id)).all()
        session.execute(insert(CustomerSession), [
            {"token_hash": token_digest(token), "customer_id": cid, "created_at": now,
             "expires_at": now + timedelta(days=1), "last_seen_at": now}
            for cid, token in zip(customer_ids, tokens, strict=True)])
        if queue:
            # Everyone joined the waiting room before the start (the pre-queue, randomised as
            # join_queue does): written in bulk, untimed, as the customers are.
            session.execute(insert(DropQueueEntry), [
                {"drop_id": ids["drop_id"], "customer_id": cid, "joined_at": now,
                 "sort_key": queue_sort_key(joined_at=now, starts_at=ids["starts_at"]),
                 "ip": "127.0.0.1", "tokens_issued": 0, "tokens_used": 0}
                for cid in customer_ids])
    db.dispose()
    return {**ids, "tokens": tokens}


def start_server(*, port: int, workers: int, ids: dict[str, Any], async_commit: bool,
                 shared_socket: bool = False, redis: bool = True,
                 stripe_api_base: str | None = None,
                 secret_key: str | None = None) -> subprocess.Popen[bytes]:
    """``secret_key``: the nodes of one shop share theirs (an admission token issued by one
    is checked by another); a fresh one by default."""
    env = {**os.environ, "DROPLINE_DATABASE_URL": DB_URL, "DROPLINE_RUN_SCHEDULER": "false",
           "DROPLINE_SECRET_KEY": secret_key or uuid.uuid4().hex * 2,
           # Every simulated shopper comes from 127.0.0.1: the per-IP limit would stop the
           # crowd at once. The per-identity limit stays at its default.
           "DROPLINE_DROPS_IP_PER_MINUTE": str(10**9),
           "BENCH_BASELINE_VARIANT": str(ids["base_variant"]),
           "BENCH_TIGHT_VARIANT": str(ids["tight_variant"]),
           "BENCH_BASELINE_LOCATION": str(ids["location_id"]),
           "PYTHONPATH": f"{ROOT / 'bench'}{os.pathsep}{ROOT / 'src'}"}
    # Without Redis the drop runs on the database path (drops.flows), as a server does.
    env.pop("DROPLINE_REDIS_URL", None)
    env.pop("DROPLINE_DROPS_REDIS_URL", None)
    if redis:
        env["DROPLINE_REDIS_URL"] = REDIS_URL
    if async_commit:
        env["PGOPTIONS"] = "-c synchronous_commit=off"
    if stripe_api_base:
        env.update({"DROPLINE_PAYMENTS": "stripe", "DROPLINE_PAYMENTS_STRIPE_SECRET_KEY":
                    STRIPE_SECRET_KEY, "DROPLINE_PAYMENTS_STRIPE_API_BASE": stripe_api_base})
    # What `dropline serve --workers N` runs (dropline.web.serving): on Linux a SO_REUSEPORT
    # socket per worker; --shared-socket runs uvicorn's own --workers (one shared socket).
    serve = (f"from dropline.web.serving import run; run('drop_sellout:create_bench_app', "
             f"host='127.0.0.1', port={port}, workers={workers}, log_level='warning', "
             f"access_log=False, backlog=4096, shared_socket={shared_socket})")
    command = [sys.executable, "-c", serve]
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 180  # importing the app takes a minute on a busy machine
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        if server.poll() is not None:
            raise SystemExit("the server exited during start-up")
        time.sleep(0.3)
    stop_server(server)
    raise SystemExit("the server did not start within 180 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


# --- the crowd ----------------------------------------------------------------------------------


RETRIES: dict[str, int] = {}  # retried attempts by cause, for the crowd being run


async def send(pool: Pool, method: str, path: str, *, token: str, json_body: Any = None,
               key: str | None = None) -> tuple[int, dict[str, Any], float]:
    """One logical request, retried (same Idempotency-Key) on 409 in-flight, 503 and dropped
    connections; returns (status, body, seconds of the last attempt)."""
    headers = {"Cookie": f"dl_session={token}"}
    if key:
        headers["Idempotency-Key"] = key
    status, body, elapsed = 0, {}, 0.0
    for attempt in range(MAX_ATTEMPTS):
        started = time.perf_counter()
        try:
            status, response_headers, body = await pool.request(method, path, headers=headers,
                                                                json_body=json_body)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            RETRIES["connection"] = RETRIES.get("connection", 0) + 1
            await asyncio.sleep(0.05 * (attempt + 1))
            continue
        elapsed = time.perf_counter() - started
        retry = status == 503 or (status == 409 and str(body.get("type", "")).endswith(
            "/request-in-flight"))
        if not retry:
            break
        RETRIES[str(status)] = RETRIES.get(str(status), 0) + 1
        await asyncio.sleep(float(response_headers.get("retry-after", "0.2")) * 0.1)
    return status, body, elapsed


async def crowd(pool: Pool, items: list[Any], shopper: Any
                ) -> tuple[float, list[tuple[int, dict[str, Any], float]]]:
    """Every shopper is a task from the start; they use the pool's keep-alive connections
    (opened before this, untimed)."""
    started = time.perf_counter()
    results = await asyncio.gather(*(shopper(pool, item) for item in items))
    return time.perf_counter() - started, list(results)


def summarise(seconds: float, results: list[tuple[int, dict[str, Any], float]]
              ) -> dict[str, Any]:
    paid = [r for r in results if r[0] == 201]
    latencies = sorted(r[2] * 1000 for r in results if r[0] in (201, 409, 402))
    statuses: dict[str, int] = {}
    samples: dict[str, Any] = {}
    for status, body, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status >= 400 and str(status) not in samples:
            samples[str(status)] = str(body.get("detail", body))[:160]

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) \
            if latencies else 0.0

    units = len(paid) * PER_PERSON
    sold_out = sum(1 for status, body, _ in results if status == 409 and str(
        body.get("type", "")).endswith(("/sold-out", "/out-of-stock")))
    return {"seconds": round(seconds, 3), "orders": len(paid), "units": units,
            "units_per_s": round(units / seconds, 1) if seconds else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "statuses": statuses,
            "sold_out_answers": sold_out, "errors": samples}


def undersold(run: dict[str, Any], left: int) -> int:
    """Units left while a shopper was told sold out. Units only go down during a crowd (the
    test card is never declined), so what is left at the end was left at every refusal; a
    remainder smaller than a shopper's quantity could not have been sold to them."""
    return left if run.get("sold_out_answers") and left >= PER_PERSON else 0


def stripe_succeeded_keys(api_base: str) -> list[str]:
    """The Dropline keys of the succeeded PaymentIntents localstripe holds (its list, every
    page): what ``verify`` checks paid orders against on ``--provider stripe``."""
    import httpx

    keys: list[str] = []
    after: str | None = None
    with httpx.Client(base_url=api_base, auth=(STRIPE_SECRET_KEY, ""), timeout=60) as client:
        for _ in range(100_000):  # bounded: one page of 100 per round
            page = client.get("/v1/payment_intents", params={
                "limit": 100, **({"starting_after": after} if after else {})}).json()
            keys += [i["metadata"]["dropline_key"] for i in page["data"]
                     if i["status"] == "succeeded" and "dropline_key" in (i["metadata"] or {})]
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
    return keys


def verify(ids: dict[str, Any], *, units: int,
           stripe_api_base: str | None = None) -> dict[str, Any]:
    from sqlalchemy import func, select

    from dropline.db import Database
    from dropline.drops.models import DropSlot
    from dropline.locations.models import StockLevel
    from dropline.orders.models import Order, OrderLine, OrderStatus
    from dropline.payments.models import LocalProviderCharge, Payment, PaymentStatus

    db = Database(DB_URL)
    out: dict[str, Any] = {}
    stripe_keys = stripe_succeeded_keys(stripe_api_base) if stripe_api_base else None
    with db.transaction() as session:
        for name, variant in (("drop", ids["drop_variant"]), ("baseline", ids["base_variant"]),
                              ("tight", ids["tight_variant"])):
            sold = session.scalar(select(func.coalesce(func.sum(OrderLine.quantity), 0))
                                  .join(Order, Order.id == OrderLine.order_id)
                                  .where(OrderLine.variant_id == variant,
                                         Order.status == OrderStatus.paid))
            order_ids = select(OrderLine.order_id).where(OrderLine.variant_id == variant)
            succeeded_keys: Any = select(LocalProviderCharge.idempotency_key).where(
                LocalProviderCharge.kind == "charge", LocalProviderCharge.outcome == "succeeded")
            if stripe_keys is not None:
                succeeded_keys = stripe_keys
            charged_not_paid = session.scalar(
                select(func.count()).select_from(Payment).join(Order, Order.id == Payment.order_id)
                .where(Payment.order_id.in_(order_ids),
                       Payment.idempotency_key.in_(succeeded_keys),
                       Order.status != OrderStatus.paid))
            paid_not_charged = session.scalar(
                select(func.count()).select_from(Order).join(Payment, Payment.order_id == Order.id)
                .where(Order.id.in_(order_ids), Order.status == OrderStatus.paid,
                       (Payment.status != PaymentStatus.succeeded)
                       | Payment.idempotency_key.not_in(succeeded_keys)))
            out[name] = {"sold": int(sold), "oversold": max(0, int(sold) - units),
                         "lost_paid_orders": int(charged_not_paid) + int(paid_not_charged)}
        out["drop"]["slots_remaining"] = int(session.scalar(
            select(func.sum(DropSlot.remaining)).where(DropSlot.drop_id == ids["drop_id"])))
        for name, variant in (("baseline", "base_variant"), ("tight", "tight_variant")):
            out[name]["stock_remaining"] = int(session.scalar(
                select(StockLevel.on_hand).where(StockLevel.variant_id == ids[variant])))
    db.dispose()
    return out


def cpu_seconds(server_session: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the server's processes, PostgreSQL's, Redis's and
    this client (and, as ``*_kernel``, the part of the server's and the client's spent in the
    kernel): read from /proc, so a run can say where each paid order's CPU went (a steadier
    figure than throughput on a shared machine). Zeros where there is no /proc."""
    totals = {"server": 0.0, "postgres": 0.0, "redis": 0.0, "client": 0.0,
              "server_kernel": 0.0, "client_kernel": 0.0}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in (p for p in os.listdir("/proc") if p.isdigit()) if os.path.isdir("/proc") else ():
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # it ended meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        kernel = int(fields[12]) / tick
        used = int(fields[11]) / tick + kernel
        if int(pid) == os.getpid():
            totals["client"] += used
            totals["client_kernel"] += kernel
        elif int(fields[3]) == server_session:
            totals["server"] += used
            totals["server_kernel"] += kernel
        elif comm == "postgres":
            totals["postgres"] += used
        elif comm.startswith("redis-server"):
            totals["redis"] += used
    return totals


def cpu_shares() -> list[int]:
    """The machine's CPU time so far from /proc/stat: [busy, idle, steal] in ticks. Steal is
    time the hypervisor gave this VM's cores to someone else: on a shared host it can take a
    third of a run, which no change to the code can win back."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return [0, 0, 0]
    idle, steal = fields[3] + fields[4], fields[7] if len(fields) > 7 else 0
    return [sum(fields[:8]) - idle - steal, idle, steal]


def settle_database() -> None:
    """Between the untimed and the timed parts: VACUUM ANALYZE and a CHECKPOINT, so that
    autovacuum (woken by the admission phase's writes) and a checkpoint do not land at random
    inside a timed crowd of a couple of seconds; then a second of quiet."""
    from sqlalchemy import create_engine, text

    if DB_URL.startswith("sqlite"):
        time.sleep(1)
        return
    engine = create_engine(DB_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text("CHECKPOINT"))
    engine.dispose()
    time.sleep(1)


def load() -> str:
    """The machine's load average, as ``uptime`` reports it (the machine may be shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def run_crowds(args: Any, ids: dict[str, Any], tokens: list[str], log: Any
                     ) -> dict[str, Any]:
    drop_id = ids["drop_id"]
    pool = Pool("127.0.0.1", args.port, args.connections or len(tokens))
    wait = (ids["starts_at"] - datetime.now(UTC)).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait + 0.1)
    await pool.open()
    try:

        async def admit(pool: Pool, token: str) -> tuple[int, dict, float]:
            return await send(pool, "POST", f"/api/v1/drops/{drop_id}/admission", token=token)

        admitted: list[Any] = [{"token": None}] * len(tokens)
        admission_load = load()
        if not args.no_queue:
            cpu_before = cpu_seconds(args.server_session)
            seconds, results = await crowd(pool, tokens, admit)
            cpu_after = cpu_seconds(args.server_session)
            admission = summarise(seconds, results)
            admission["cpu_ms_per_token"] = {
                name: round((cpu_after[name] - cpu_before[name]) * 1000 / len(tokens), 3)
                for name in ("server", "postgres", "redis", "client")}
            log(f"admission ({admission_load} load): {seconds:.2f} s, "
                f"{admission['statuses']}")
            admitted = [body if status == 200 else None for status, body, _ in results]
        else:
            admission = {"seconds": 0.0, "statuses": {}}

        async def buy(pool: Pool, item: tuple[str, Any]) -> tuple[int, dict, float]:
            token, body = item
            if body is None:
                return 0, {}, 0.0
            return await send(pool, "POST", f"/api/v1/drops/{drop_id}/purchase", token=token,
                              key=uuid.uuid4().hex, json_body={
                                  "lines": [{"variant_id": ids["drop_variant"],
                                             "quantity": PER_PERSON}],
                                  "admission_token": body["token"], "payment_method": CARD,
                                  "shipping_address": ADDRESS})

        await asyncio.to_thread(settle_database)
        # The server closes keep-alive connections idle for 5 s (uvicorn's default), and most
        # were idle since the admission crowd: open them afresh, untimed, as the other crowds.
        await pool.reopen()
        drop_load = load()
        RETRIES.clear()
        cpu_before, shares_before = cpu_seconds(args.server_session), cpu_shares()
        drop_run = summarise(*await crowd(pool, list(zip(tokens, admitted, strict=True)), buy))
        cpu_after, shares = cpu_seconds(args.server_session), cpu_shares()
        spent = [after - before for after, before in zip(shares, shares_before, strict=True)]
        drop_run["machine"] = {name: round(part / max(1, sum(spent)), 3)
                               for name, part in zip(("busy", "idle", "steal"), spent,
                                                     strict=True)}
        drop_run["load"] = drop_load
        drop_run["retries"] = dict(RETRIES)
        drop_run["cpu_ms_per_order"] = {
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / drop_run["orders"], 3)
            for name in cpu_before} if drop_run["orders"] else {}
        log(f"drop ({drop_load} load): {drop_run}")

        runs: dict[str, Any] = {}
        for name, path in (("baseline", "/bench/baseline/checkout"),
                           ("tight", "/bench/tight/checkout")):

            async def classic(pool: Pool, token: str, path: str = path
                              ) -> tuple[int, dict, float]:
                return await send(pool, "POST", path, token=token, key=uuid.uuid4().hex,
                                  json_body={"payment_method": CARD, "shipping_address": ADDRESS,
                                             "quantity": PER_PERSON})

            if args.no_baseline:
                runs[name] = {"units_per_s": 0.0, "p50_ms": None, "p99_ms": None,
                              "seconds": None, "statuses": {}, "sold_out_answers": 0,
                              "load": load()}
                continue
            await asyncio.to_thread(settle_database)
            await pool.reopen()
            runs[name] = {"load": load()}
            RETRIES.clear()
            runs[name] |= summarise(*await crowd(pool, tokens, classic))
            runs[name]["retries"] = dict(RETRIES)
            log(f"{name} ({runs[name]['load']} load): {runs[name]}")
    finally:
        pool.close()
    return {"drop": drop_run, "baseline": runs["baseline"], "tight": runs["tight"],
            "admission": admission}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--shoppers", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=0,
                        help="HTTP keep-alive connections the crowd shares (default: one per "
                             "shopper)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--async-commit", action="store_true",
                        help="synchronous_commit=off for the server's connections")
    parser.add_argument("--no-queue", action="store_true",
                        help="run the drop without its waiting room (one request per shopper, "
                             "like the baseline)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the baseline crowd (a quicker run while tuning; the JSON then "
                             "has no ratio)")
    parser.add_argument("--shared-socket", action="store_true",
                        help="workers share one listening socket (uvicorn's --workers) instead "
                             "of a SO_REUSEPORT socket each (dropline serve's default on Linux)")
    parser.add_argument("--no-redis", action="store_true",
                        help="serve without Redis: the drop's purchases take the database path "
                             "(drops.flows) through the same entry point, as a server without "
                             "DROPLINE_REDIS_URL does")
    parser.add_argument("--sqlite", metavar="PATH",
                        help="run on a SQLite file (recreated) instead of PostgreSQL: the "
                             "embedded default; implies --no-redis and --no-baseline (the "
                             "baselines' order writing is PostgreSQL's)")
    parser.add_argument("--provider", choices=("local", "stripe"), default="local",
                        help="the card provider the server charges through: the local one "
                             "(default), or Stripe against localstripe")
    parser.add_argument("--stripe-api-base", metavar="URL",
                        help="with --provider stripe: a running localstripe (default: one is "
                             "started for the run)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    # `timeout` (or Ctrl-C) still stops the server: the finally below runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    log = (lambda *a: None) if args.json else print
    if args.sqlite:
        use_sqlite(args.sqlite)
        args.no_redis = args.no_baseline = True

    with contextlib.ExitStack() as stack:
        stripe_api_base = args.stripe_api_base
        if args.provider == "stripe" and not stripe_api_base:
            sys.path.insert(0, str(ROOT))  # the test suite's localstripe starter
            from tests.payments.localstripe_server import run_localstripe

            stripe_api_base = stack.enter_context(run_localstripe(
                Path(tempfile.mkdtemp(prefix="bench-localstripe-")) / "server.log"))
        run_bench(args, log, stripe_api_base if args.provider == "stripe" else None)


def run_bench(args: Any, log: Any, stripe_api_base: str | None) -> None:
    recreate_database()
    flushed = 0 if args.no_redis else flush_bench_keys()
    ids = seed(units=args.units, shoppers=args.shoppers, queue=not args.no_queue)
    tokens = ids.pop("tokens")
    log(f"seeded drop {ids['drop_id']} ({args.units} units), {args.shoppers} shoppers; "
        f"{flushed} old bench keys flushed from Redis")
    server = start_server(port=args.port, workers=args.workers, ids=ids,
                          async_commit=args.async_commit, shared_socket=args.shared_socket,
                          redis=not args.no_redis, stripe_api_base=stripe_api_base)
    args.server_session = server.pid  # start_new_session: its workers share its session id
    try:
        # The crowd's client shares the server's cores: its garbage collector is set as the
        # server workers' (dropline.web.serving.worker_app), so it spends less of them.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        runs = asyncio.run(run_crowds(args, ids, tokens, log))
    finally:
        stop_server(server)
    drop_run, base_run, admission = runs["drop"], runs["baseline"], runs["admission"]
    tight_run = runs["tight"]
    checks = verify(ids, units=args.units, stripe_api_base=stripe_api_base)
    best = max(("baseline", base_run), ("tight", tight_run),
               key=lambda item: item[1]["units_per_s"])
    with_admission = drop_run["seconds"] + admission["seconds"]
    result = {
        "units_per_s": drop_run["units_per_s"], "p50_ms": drop_run["p50_ms"],
        "p99_ms": drop_run["p99_ms"], "oversold": checks["drop"]["oversold"],
        "lost_paid_orders": checks["drop"]["lost_paid_orders"],
        "baseline_units_per_s": base_run["units_per_s"], "baseline_p50_ms": base_run["p50_ms"],
        "baseline_p99_ms": base_run["p99_ms"], "baseline_oversold": checks["baseline"]["oversold"],
        "baseline_lost_paid_orders": checks["baseline"]["lost_paid_orders"],
        "ratio": round(drop_run["units_per_s"] / base_run["units_per_s"], 2)
        if base_run["units_per_s"] else None,
        "undersold": undersold(drop_run, checks["drop"]["slots_remaining"]),
        "baseline_undersold": undersold(base_run, checks["baseline"]["stock_remaining"]),
        "tight_baseline_units_per_s": tight_run["units_per_s"],
        "tight_baseline_p50_ms": tight_run["p50_ms"], "tight_baseline_p99_ms": tight_run["p99_ms"],
        "tight_baseline_oversold": checks["tight"]["oversold"],
        "tight_baseline_lost_paid_orders": checks["tight"]["lost_paid_orders"],
        "tight_baseline_undersold": undersold(tight_run, checks["tight"]["stock_remaining"]),
        "best_baseline": best[0] if best[1]["units_per_s"] else None,
        "ratio_best_baseline": round(drop_run["units_per_s"] / best[1]["units_per_s"], 2)
        if best[1]["units_per_s"] else None,
        "admission_seconds": admission["seconds"],
        "admission_cpu_ms_per_token": admission.get("cpu_ms_per_token", {}),
        "units_per_s_with_admission": round(drop_run["units"] / with_admission, 1)
        if with_admission else None,
        "units": args.units, "shoppers": args.shoppers, "units_sold": checks["drop"]["sold"],
        "slots_remaining": checks["drop"]["slots_remaining"],
        "drop_cpu_ms_per_order": drop_run["cpu_ms_per_order"],
        "drop_machine_shares": drop_run["machine"],
        "drop_retries": drop_run["retries"], "baseline_retries": base_run.get("retries", {}),
        "drop_seconds": drop_run["seconds"], "baseline_seconds": base_run["seconds"],
        "tight_baseline_seconds": tight_run["seconds"],
        "drop_statuses": drop_run["statuses"], "baseline_statuses": base_run["statuses"],
        "tight_baseline_statuses": tight_run["statuses"],
        "tight_baseline_retries": tight_run.get("retries", {}),
        "admission_statuses": admission["statuses"],
        "load_average": {"drop": drop_run["load"], "baseline": base_run["load"],
                         "tight_baseline": tight_run["load"], "end": load()},
        "settings": {"provider": args.provider + (f" ({stripe_api_base}, batch concurrency "
                                                  f"{os.environ.get('DROPLINE_PAYMENTS_STRIPE_BATCH_CONCURRENCY', 8)})"
                                                  if stripe_api_base else ""),
                     "workers": args.workers,
                     "connections": args.connections or args.shoppers,
                     "server": "uvicorn --loop uvloop --http httptools, "
                               + ("one shared socket" if args.shared_socket
                                  else "a SO_REUSEPORT socket per worker (dropline serve)"),
                     "gate": "none: the database path (--no-redis)" if args.no_redis
                     else f"redis {REDIS_URL} prefix {REDIS_PREFIX}",
                     "client": "bench/leanhttp.py (asyncio keep-alive)",
                     "database": "sqlite" if args.sqlite else "postgresql",
                     "synchronous_commit": "off" if args.async_commit else "on",
                     "waiting_room": not args.no_queue,
                     "timed": "purchase requests (admission timed apart: admission_seconds)",
                     "cpus": os.cpu_count()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
