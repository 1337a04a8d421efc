"""Drop sell-out benchmark: the real server on PostgreSQL, a flash crowd over HTTP.

    .venv/bin/python bench/drop_sellout.py --json
    .venv/bin/python bench/drop_sellout.py --units 5000 --shoppers 3000 --workers 2 --json

What it does, in one run:

1. (Re)creates the database ``dropline_bench`` on 127.0.0.1 and migrates it to every head.
2. Seeds a location, one product with two variants (one for the drop, one for the baseline),
   a drop of ``--units`` units (limit 2 per person, waiting room on, admission rate high
   enough to admit the whole crowd at once), the same number of units as one ordinary stock
   row for the baseline, and ``--shoppers`` customers with sessions, written in bulk with one
   precomputed argon2 hash (signing 3,000 people up through the API would measure argon2).
3. Starts ``uvicorn`` with ``--workers`` processes (what ``dropline serve --workers`` runs),
   plus one bench-only route: the naive baseline.
4. Every shopper joins the waiting room before the start (not timed), then, all at once:
   asks for an admission token and buys 2 units with the express purchase endpoint
   (``Idempotency-Key``; admission, hold, order, card charge, settle). Timed from the first
   request to the last response: ``units_per_s``; ``p50_ms``/``p99_ms`` are the purchase
   request latencies.
5. The same crowd then buys the baseline: ``POST /bench/baseline/checkout``, the classic
   design (as Saleor/Vendure/Medusa): ``SELECT ... FOR UPDATE`` on the one stock row, decrement,
   write the order in that same transaction, commit, charge, settle. Same order writing and
   payment code as the drop path (``orders.flows``); only the way units are taken differs. One
   request per shopper (it has no waiting room), so the comparison favours the baseline.
6. Checks the database: ``oversold`` (units in paid orders beyond the cap) and
   ``lost_paid_orders`` (succeeded provider charges without a paid order, plus paid orders
   without a succeeded charge), for both runs.

The last line printed is one JSON object. Traffic goes only to 127.0.0.1; every loop is
bounded. Settings used are stated in the JSON (``settings``); PostgreSQL runs with its defaults
(``synchronous_commit`` on) unless ``--async-commit`` is given, which sets
``synchronous_commit=off`` for the server's connections only and says so in the output.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_NAME = "dropline_bench"
DB_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
ADDRESS = {"name": "Bench Shopper", "line1": "1 Fournier St", "city": "London",
           "postcode": "E1 6QE", "country": "GB"}
PER_PERSON = 2
MAX_ATTEMPTS = 6  # per request: retries of 409 in-flight / 503 / connection errors


# --- the baseline: bench-only, mounted by create_bench_app ------------------------------------


def baseline_checkout(db: Any, *, clock: Any, settings: Any, provider: Any, customer_id: int,
                      variant_id: int, location_id: int, quantity: int, card: Any,
                      shipping_address: dict[str, Any], checkout_reference: str) -> int:
    """The classic design: lock the one stock row for the whole order-writing transaction."""
    from sqlalchemy import select

    from dropline.customers.models import Customer
    from dropline.errors import OutOfStock
    from dropline.locations.models import StockLevel
    from dropline.orders import flows as orders
    from dropline.orders.rules import PricedLine, order_totals
    from dropline.orders.service import find_by_checkout_reference

    with db.transaction() as session:
        order = find_by_checkout_reference(session, checkout_reference)
        if order is None:
            level = session.scalar(select(StockLevel).where(
                StockLevel.location_id == location_id, StockLevel.variant_id == variant_id)
                .with_for_update())
            if level is None or level.on_hand < quantity:
                raise OutOfStock("sold out")
            level.on_hand -= quantity
            customer = session.get(Customer, customer_id)
            lines = orders.draft_lines(session, [(variant_id, None, quantity)])
            totals = order_totals([PricedLine(variant_id, lines[0].unit_price_amount, quantity,
                                              lines[0].variant.currency)],
                                  currency=settings.currency,
                                  flat_shipping=settings.flat_shipping_amount,
                                  free_shipping_threshold=settings.free_shipping_threshold)
            order = orders.write_pending_order(
                session, clock=clock, customer=customer, lines=lines, totals=totals,
                checkout_reference=checkout_reference, card=card,
                shipping_address=shipping_address, location_id=location_id)
        payment = orders.latest_payment(session, order.id)

    def give_back(session: Any, failed: Any) -> None:
        from sqlalchemy import update

        session.execute(update(StockLevel).where(
            StockLevel.location_id == location_id, StockLevel.variant_id == variant_id)
            .values(on_hand=StockLevel.on_hand + quantity))

    return orders.pay_order(db, clock=clock, provider=provider, order=order, payment=payment,
                            card=card, on_payment_failed=give_back)


def create_bench_app() -> Any:
    """``dropline.web.app.create_app`` plus the baseline route (bench only)."""
    from fastapi import Header, Request
    from fastapi.responses import JSONResponse

    from dropline.adapters.payments import Card
    from dropline.drops.schemas import HoldCheckout
    from dropline.idempotency.web import run_idempotent
    from dropline.web.app import create_app
    from dropline.web.deps import CustomerDep

    app = create_app()
    services = app.state.services
    variant_id = int(os.environ["BENCH_BASELINE_VARIANT"])
    location_id = int(os.environ["BENCH_BASELINE_LOCATION"])

    class BaselineBody(HoldCheckout):
        quantity: int = PER_PERSON

    @app.post("/bench/baseline/checkout", include_in_schema=False)
    def baseline(body: BaselineBody, request: Request, customer: CustomerDep,
                 idempotency_key: str | None = Header(None, alias="Idempotency-Key")
                 ) -> JSONResponse:
        def operation(claim: Any) -> tuple[int, dict[str, int]]:
            order_id = baseline_checkout(
                services.db, clock=services.clock, settings=services.settings,
                provider=services.payments, customer_id=customer.id, variant_id=variant_id,
                location_id=location_id, quantity=body.quantity,
                card=Card(**body.card.model_dump()),
                shipping_address=body.shipping_address.model_dump(),
                checkout_reference=claim.reference)
            return 201, {"id": order_id}

        return run_idempotent(services, request=request, principal=customer,
                              key=idempotency_key, body=body, operation=operation)

    return app


# --- set-up -------------------------------------------------------------------------------------


def recreate_database() -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DB_NAME}"))
    engine.dispose()
    from dropline.migrate import upgrade

    upgrade(DB_URL)


def seed(*, units: int, shoppers: int, queue: bool = True) -> dict[str, Any]:
    from sqlalchemy import insert, select

    from dropline.catalog.service import VariantSpec, create_product, set_stock, variants_of
    from dropline.clock import SystemClock
    from dropline.customers.models import Customer, CustomerSession
    from dropline.db import Database
    from dropline.drops import service
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
                                           VariantSpec("FIG-BASE", "50 ml", 6500, "GBP")])
        drop_variant, base_variant = variants_of(session, [product.id])[product.id]
        set_stock(session, clock=clock, location_code="central", variant_id=base_variant.id,
                  on_hand=units, actor="bench")
        drop = service.create_drop(
            session, clock=clock, slug="bench-drop", name="Bench drop",
            variants=[service.VariantCap(drop_variant.id)], shared_cap=units,
            per_person_limit=PER_PERSON, location_code="central",
            schedule=service.DropSchedule(
                starts_at=now + timedelta(seconds=5), ends_at=now + timedelta(hours=2),
                admission_per_minute=1_000_000, queue_enabled=queue, hold_ttl_seconds=600))
        ids = dict(drop_id=drop.id, drop_variant=drop_variant.id, base_variant=base_variant.id,
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
             "expires_at": now + timedelta(days=1)}
            for cid, token in zip(customer_ids, tokens, strict=True)])
    db.dispose()
    return {**ids, "tokens": tokens}


def start_server(*, port: int, workers: int, ids: dict[str, Any], async_commit: bool
                 ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DROPLINE_DATABASE_URL": DB_URL, "DROPLINE_RUN_SCHEDULER": "false",
           "DROPLINE_SECRET_KEY": uuid.uuid4().hex * 2,
           # Every simulated shopper comes from 127.0.0.1: the per-IP limit would stop the
           # crowd at once. The per-identity limit stays at its default.
           "DROPLINE_DROPS_IP_PER_MINUTE": str(10**9),
           "BENCH_BASELINE_VARIANT": str(ids["base_variant"]),
           "BENCH_BASELINE_LOCATION": str(ids["location_id"]),
           "PYTHONPATH": f"{ROOT / 'bench'}{os.pathsep}{ROOT / 'src'}"}
    if async_commit:
        env["PGOPTIONS"] = "-c synchronous_commit=off"
    command = [sys.executable, "-m", "uvicorn", "drop_sellout:create_bench_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit("the server exited during start-up")
        time.sleep(0.3)
    stop_server(server)
    raise SystemExit("the server did not start within 60 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


# --- the crowd ----------------------------------------------------------------------------------


async def send(client: httpx.AsyncClient, method: str, path: str, *, token: str,
               json_body: Any = None, key: str | None = None) -> tuple[int, dict[str, Any], float]:
    """One logical request, retried (same Idempotency-Key) on 409 in-flight, 503 and dropped
    connections; returns (status, body, seconds of the last attempt)."""
    headers = {"Cookie": f"dl_session={token}"}
    if key:
        headers["Idempotency-Key"] = key
    status, body, elapsed = 0, {}, 0.0
    for attempt in range(MAX_ATTEMPTS):
        started = time.perf_counter()
        try:
            response = await client.request(method, path, json=json_body, headers=headers)
        except httpx.TransportError:
            await asyncio.sleep(0.05 * (attempt + 1))
            continue
        elapsed = time.perf_counter() - started
        status = response.status_code
        body = response.json() if response.content else {}
        retry = status == 503 or (status == 409 and str(body.get("type", "")).endswith(
            "/request-in-flight"))
        if not retry:
            break
        await asyncio.sleep(float(response.headers.get("Retry-After", "0.2")) * 0.1)
    return status, body, elapsed


async def crowd(base: str, tokens: list[str], shopper: Any, *, concurrency: int
                ) -> tuple[float, list[tuple[int, dict[str, Any], float]]]:
    """Every shopper is a task from the start; they share ``concurrency`` keep-alive
    connections, handed out by a semaphore (httpx's own pool slows down badly with thousands
    of queued requests, which would measure the load generator, not the server)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def gated(client: httpx.AsyncClient, token: str) -> tuple[int, dict[str, Any], float]:
        async with gate:
            return await shopper(client, token)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(gated(client, token) for token in tokens))
        return time.perf_counter() - started, list(results)


def summarise(seconds: float, results: list[tuple[int, dict[str, Any], float]]
              ) -> dict[str, Any]:
    paid = [r for r in results if r[0] == 201]
    latencies = sorted(r[2] * 1000 for r in results if r[0] in (201, 409, 402))
    statuses: dict[str, int] = {}
    for status, _, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) \
            if latencies else 0.0

    units = len(paid) * PER_PERSON
    return {"seconds": round(seconds, 3), "orders": len(paid), "units": units,
            "units_per_s": round(units / seconds, 1) if seconds else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "statuses": statuses}


def verify(ids: dict[str, Any], *, units: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from dropline.db import Database
    from dropline.drops.models import DropSlot
    from dropline.locations.models import StockLevel
    from dropline.orders.models import Order, OrderLine, OrderStatus
    from dropline.payments.models import LocalProviderCharge, Payment, PaymentStatus

    db = Database(DB_URL)
    out: dict[str, Any] = {}
    with db.transaction() as session:
        for name, variant in (("drop", ids["drop_variant"]), ("baseline", ids["base_variant"])):
            sold = session.scalar(select(func.coalesce(func.sum(OrderLine.quantity), 0))
                                  .join(Order, Order.id == OrderLine.order_id)
                                  .where(OrderLine.variant_id == variant,
                                         Order.status == OrderStatus.paid))
            order_ids = select(OrderLine.order_id).where(OrderLine.variant_id == variant)
            succeeded_keys = select(LocalProviderCharge.idempotency_key).where(
                LocalProviderCharge.kind == "charge", LocalProviderCharge.outcome == "succeeded")
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
        out["baseline"]["stock_remaining"] = int(session.scalar(
            select(StockLevel.on_hand).where(StockLevel.variant_id == ids["base_variant"])))
    db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--shoppers", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=256,
                        help="HTTP connections the crowd shares")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--async-commit", action="store_true",
                        help="synchronous_commit=off for the server's connections")
    parser.add_argument("--no-queue", action="store_true",
                        help="run the drop without its waiting room (one request per shopper, "
                             "like the baseline)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    log = (lambda *a: None) if args.json else print  # noqa: E731

    recreate_database()
    ids = seed(units=args.units, shoppers=args.shoppers, queue=not args.no_queue)
    tokens = ids.pop("tokens")
    log(f"seeded drop {ids['drop_id']} ({args.units} units), {args.shoppers} shoppers")
    server = start_server(port=args.port, workers=args.workers, ids=ids,
                          async_commit=args.async_commit)
    base = f"http://127.0.0.1:{args.port}"
    drop_id = ids["drop_id"]
    try:
        async def join(client: httpx.AsyncClient, token: str) -> tuple[int, dict, float]:
            return await send(client, "POST", f"/api/v1/drops/{drop_id}/queue", token=token)

        joined = asyncio.run(crowd(base, tokens, join, concurrency=args.connections))
        log(f"waiting room joined: {summarise(*joined)['statuses']}")
        wait = (ids["starts_at"] - datetime.now(UTC)).total_seconds()
        if wait > 0:
            time.sleep(wait + 0.1)

        async def buy(client: httpx.AsyncClient, token: str) -> tuple[int, dict, float]:
            body: dict[str, Any] = {"token": None}
            if not args.no_queue:
                status, body, _ = await send(client, "POST",
                                             f"/api/v1/drops/{drop_id}/admission", token=token)
                if status != 200:
                    return status, body, 0.0
            return await send(client, "POST", f"/api/v1/drops/{drop_id}/purchase", token=token,
                              key=uuid.uuid4().hex, json_body={
                                  "lines": [{"variant_id": ids["drop_variant"],
                                             "quantity": PER_PERSON}],
                                  "admission_token": body["token"], "card": CARD,
                                  "shipping_address": ADDRESS})

        drop_run = summarise(*asyncio.run(crowd(base, tokens, buy, concurrency=args.connections)))
        log(f"drop: {drop_run}")

        async def naive(client: httpx.AsyncClient, token: str) -> tuple[int, dict, float]:
            return await send(client, "POST", "/bench/baseline/checkout", token=token,
                              key=uuid.uuid4().hex, json_body={
                                  "card": CARD, "shipping_address": ADDRESS,
                                  "quantity": PER_PERSON})

        base_run = summarise(*asyncio.run(crowd(base, tokens, naive,
                                                concurrency=args.connections)))
        log(f"baseline: {base_run}")
    finally:
        stop_server(server)
    checks = verify(ids, units=args.units)
    result = {
        "units_per_s": drop_run["units_per_s"], "p50_ms": drop_run["p50_ms"],
        "p99_ms": drop_run["p99_ms"], "oversold": checks["drop"]["oversold"],
        "lost_paid_orders": checks["drop"]["lost_paid_orders"],
        "baseline_units_per_s": base_run["units_per_s"], "baseline_p50_ms": base_run["p50_ms"],
        "baseline_p99_ms": base_run["p99_ms"], "baseline_oversold": checks["baseline"]["oversold"],
        "baseline_lost_paid_orders": checks["baseline"]["lost_paid_orders"],
        "ratio": round(drop_run["units_per_s"] / base_run["units_per_s"], 2)
        if base_run["units_per_s"] else None,
        "units": args.units, "shoppers": args.shoppers, "units_sold": checks["drop"]["sold"],
        "drop_seconds": drop_run["seconds"], "baseline_seconds": base_run["seconds"],
        "drop_statuses": drop_run["statuses"], "baseline_statuses": base_run["statuses"],
        "settings": {"workers": args.workers, "connections": args.connections,
                     "synchronous_commit": "off" if args.async_commit else "on",
                     "waiting_room": not args.no_queue,
                     "requests_per_drop_shopper": 1 if args.no_queue else 2,
                     "requests_per_baseline_shopper": 1,
                     "cpus": os.cpu_count()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
