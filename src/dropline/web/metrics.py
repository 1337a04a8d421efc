"""What to watch: ``/metrics`` in Prometheus's text format, and liveness vs readiness.

Three kinds of figures:

* **Measured in the process**: request latency by route template and status class
  (``dropline_http_request_duration_seconds``; the drop purchase lane answers before the
  middleware stack and is counted by its own bench), edge purges given up.
* **Counted by the drop purchases** (``drops.crowd.counters``: plain integers the purchase
  lane and the database path add to, on the event loop's thread): gate decisions by outcome,
  refusals by problem type, paid and replayed purchases, orders per written batch and each
  batch's write time. With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker process writes a
  snapshot of its own figures there every second (``drops-<pid>.json``, replaced atomically)
  and a scrape adds up every worker's file, its own taken fresh: the node's sum, at most a
  second behind. Without it they are the process's own.
* **Read from the database at scrape time** (the same from any node or worker): the mail
  outbox and webhook deliveries by status with the age of the oldest one due, and payments of
  the last 15 minutes by outcome; and each live drop's waiting room (waiting, admitted). Each
  scrape costs a few indexed ``GROUP BY`` queries.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared by
them (cleared at each start) and every scrape sums all workers' request figures
(prometheus_client's multiprocess mode); otherwise a scrape sees the worker that answered.

Access: scrapes from the machine itself are let through; from elsewhere they need
``Authorization: Bearer <DROPLINE_METRICS_TOKEN>`` (a business's order and payment volumes
are not public).

``/livez`` says the process serves (no I/O); ``/readyz`` that it can do its work: the database
answers and Redis too when configured. A load balancer routes by ``/readyz``; a supervisor
restarts by ``/livez``."""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropline.drops.crowd.counters import DropCounters, Tally
from dropline.drops.waiting_room import room_counts
from dropline.notifications.models import MailOutboxItem
from dropline.payments.models import Payment
from dropline.services import Services
from dropline.webhooks.models import WebhookDelivery

__all__ = ["install_metrics", "start_metrics", "stop_metrics"]

router = APIRouter(tags=["ops"])
log = logging.getLogger("dropline.metrics")
LOOPBACK = {"127.0.0.1", "::1"}  # the peer address of a scrape from this machine
PAYMENT_WINDOW = timedelta(minutes=15)


class ShopCollector:
    """The figures read from the database at each scrape."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Any:
        now = self.services.clock.now()
        with self.services.db.transaction() as session:
            mail = session.execute(select(MailOutboxItem.status, func.count(),
                                          func.min(MailOutboxItem.next_attempt_at))
                                   .group_by(MailOutboxItem.status)).all()
            hooks = session.execute(select(WebhookDelivery.status, func.count(),
                                           func.min(WebhookDelivery.next_attempt_at))
                                    .group_by(WebhookDelivery.status)).all()
            payments = session.execute(select(Payment.status, func.count())
                                       .where(Payment.created_at >= now - PAYMENT_WINDOW)
                                       .group_by(Payment.status)).all()
        for name, what, rows in (("mail_outbox", "Mails in the outbox", mail),
                                 ("webhook_deliveries", "Webhook deliveries", hooks)):
            count = GaugeMetricFamily(f"dropline_{name}", f"{what}, by status",
                                      labels=["status"])
            overdue = GaugeMetricFamily(
                f"dropline_{name}_overdue_seconds",
                f"{what}: how long the most overdue one not yet done has been due (0: none)")
            late = 0.0
            for status, number, due in rows:
                count.add_metric([str(status)], number)
                if str(status) in ("pending", "sending") and due is not None:
                    late = max(late, (now - due).total_seconds())  # UTCDateTime: aware
            overdue.add_metric([], late)
            yield count
            yield overdue
        outcomes = GaugeMetricFamily("dropline_payments_recent",
                                     "Payments of the last 15 minutes, by outcome",
                                     labels=["status"])
        for status, number in payments:
            outcomes.add_metric([str(status)], number)
        yield outcomes
        purger = self.services.edge
        failed = GaugeMetricFamily("dropline_edge_purges_failed",
                                   "Edge purges given up after every attempt (this process)")
        failed.add_metric([], getattr(purger, "failed", 0))
        yield failed


class CounterFiles:
    """The drop counters of every worker process of the node, through files in
    ``PROMETHEUS_MULTIPROC_DIR``: each process writes its snapshot to ``drops-<pid>.json``
    (written aside, then renamed: a reader never sees half a file) and a scrape reads them all.
    A process that has ended leaves its last figures there, so the node's totals never go
    back (as prometheus_client does with a dead worker's counters); the folder is emptied
    before the server starts."""

    PERIOD_SECONDS = 1.0

    def __init__(self, folder: Path, counters: DropCounters) -> None:
        self.folder, self.counters = folder, counters
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def own(self) -> Path:
        return self.folder / f"drops-{os.getpid()}.json"

    def publish(self) -> None:
        data = json.dumps(self.counters.snapshot())
        aside = self.own.with_suffix(".tmp")
        aside.write_text(data)
        aside.replace(self.own)

    def summed(self) -> DropCounters:
        """Every process's figures added up, this one's as they stand now."""
        own = self.own
        snapshots = [self.counters.snapshot()]
        for path in self.folder.glob("drops-*.json"):
            if path != own:
                try:
                    snapshots.append(json.loads(path.read_text()))
                except (OSError, ValueError):  # removed meanwhile: nothing to add
                    continue
        return DropCounters.summed(snapshots)

    def start(self) -> None:
        """Publishes every ``PERIOD_SECONDS`` from a thread of its own, in the worker process
        (the app's lifespan: after the fork), until ``stop``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="dropline-counters",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.publish()

    def _run(self) -> None:
        while not self._stop.wait(self.PERIOD_SECONDS):
            try:
                self.publish()
            except OSError:  # a full or missing folder: the next period tries again
                log.warning("could not publish the drop counters to %s", self.folder,
                            exc_info=True)


class DropCollector:
    """The drops' figures: the purchase counters (``drops.crowd.counters``, read as they
    stand: a purchase never touches a Prometheus object), summed over the node's worker
    processes through ``CounterFiles`` when there is a folder, and each live drop's waiting
    room read from the database. Families with no purchase yet are present and empty."""

    def __init__(self, app_state: Any, services: Services) -> None:
        self.app_state = app_state
        self.services = services

    def collect(self) -> Any:
        files: CounterFiles | None = getattr(self.app_state, "drop_counter_files", None)
        counters: DropCounters = (files.summed() if files is not None
                                  else self.app_state.drop_counters)
        decisions = CounterMetricFamily(
            "dropline_drop_gate_decisions", "The drop gate's verdicts, by outcome",
            labels=["outcome"])
        refusals = CounterMetricFamily(
            "dropline_drop_refusals", "Drop purchases answered with a problem, by its type",
            labels=["reason"])
        purchases = CounterMetricFamily(
            "dropline_drop_purchases", "Drop purchases answered with a new paid order or a "
            "stored answer sent again", labels=["outcome"])
        batch = HistogramMetricFamily(
            "dropline_drop_batch_orders", "Orders per written batch (the purchase lane)")
        write = HistogramMetricFamily(
            "dropline_drop_batch_write_seconds", "Time to write, charge and settle one batch "
            "(the purchase lane)")
        for outcome, number in sorted(counters.decisions.items()):
            decisions.add_metric([outcome], number)
        for reason, number in sorted(counters.refusals.items()):
            refusals.add_metric([reason], number)
        if counters.paid or counters.replayed:
            purchases.add_metric(["paid"], counters.paid)
            purchases.add_metric(["replayed"], counters.replayed)
        if counters.batch_orders.count:
            for family, tally in ((batch, counters.batch_orders),
                                  (write, counters.write_seconds)):
                _add_tally(family, [], tally)
        yield from (decisions, refusals, purchases, batch, write)
        with self.services.db.transaction() as session:
            rooms = room_counts(session, now=self.services.clock.now())
        waiting = GaugeMetricFamily("dropline_drop_waiting_room_depth",
                                    "Shoppers in a live drop's waiting room not yet admitted",
                                    labels=["drop"])
        admitted = CounterMetricFamily("dropline_drop_admitted",
                                       "Shoppers of a live drop's waiting room given an "
                                       "admission token (its rate is the admission rate)",
                                       labels=["drop"])
        for room in rooms:
            waiting.add_metric([str(room.drop_id)], room.waiting)
            admitted.add_metric([str(room.drop_id)], room.admitted)
        yield waiting
        yield admitted


def _add_tally(family: HistogramMetricFamily, labels: list[str], tally: Tally) -> None:
    family.add_metric(labels, tally.cumulative(), sum_value=tally.sum)


class RequestTimer:
    """ASGI middleware: each request's duration by route template (``/products/{slug}``,
    never the raw path, so the series stay few) and status class."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(scope["method"], template, f"{status // 100}xx").observe(
                time.perf_counter() - started)


def _allowed(request: Request, token: str | None) -> bool:
    given = request.headers.get("authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    return request.client is not None and request.client.host in LOOPBACK


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    if not _allowed(request, services.settings.web.metrics_token):
        return Response("metrics need Authorization: Bearer <DROPLINE_METRICS_TOKEN>\n",
                        status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(request.app.state.metrics_registry),
                    media_type=CONTENT_TYPE_LATEST)


@router.get("/livez", summary="Liveness: the process serves (no I/O)")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database (and Redis, if configured) answer")
def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        with services.db.transaction() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready, and says which
        checks["database"] = f"failed: {type(exc).__name__}"
    redis_url = services.settings.redis.url
    if redis_url:
        import redis  # only where Redis is configured

        try:
            client = redis.Redis.from_url(redis_url, socket_timeout=1)
            client.ping()
            client.close()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


def install_metrics(app: FastAPI, services: Services) -> None:
    """The app's own registry (tests build many apps in one process), its request timer
    and its routes."""
    registry = CollectorRegistry()
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    # With a folder the histogram's values live in its files, which MultiProcessCollector
    # reads for every worker: registered here as well, this process's would appear twice.
    histogram = Histogram(
        "dropline_http_request_duration_seconds", "Request duration by route and status class",
        ["method", "route", "status_class"], registry=None if folder else registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    app.state.drop_counters = DropCounters()  # the process's; the drop purchases add to it
    if folder:
        MultiProcessCollector(registry)
        app.state.drop_counter_files = CounterFiles(Path(folder), app.state.drop_counters)
    registry.register(ShopCollector(services))
    registry.register(DropCollector(app.state, services))
    app.state.metrics_registry = registry
    app.add_middleware(RequestTimer, histogram=histogram)
    app.include_router(router)


def start_metrics(app: FastAPI) -> None:
    """In the worker process, once it serves (the app's lifespan): its drop counters are
    published for the node's other workers to add up."""
    files: CounterFiles | None = getattr(app.state, "drop_counter_files", None)
    if files is not None:
        files.start()


def stop_metrics(app: FastAPI) -> None:
    files: CounterFiles | None = getattr(app.state, "drop_counter_files", None)
    if files is not None:
        files.stop()
