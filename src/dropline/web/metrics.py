"""What to watch: ``/metrics`` in Prometheus's text format, and liveness vs readiness.

Three kinds of figures:

* **Measured in the process**: request latency by route template and status class
  (``dropline_http_request_duration_seconds``; the drop purchase lane answers before the
  middleware stack and is counted by its own bench), edge purges given up.
* **Counted by the drop purchase lane** (``drops.crowd.counters``: plain integers the lane adds
  to, read here at scrape time): gate decisions by outcome, refusals by problem type, paid and
  replayed purchases, orders per written batch and each batch's write time. They are the
  answering worker's, labelled ``worker`` with its process id.
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
import os
import time
from datetime import timedelta
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

__all__ = ["install_metrics"]

router = APIRouter(tags=["ops"])
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


class DropCollector:
    """The drops' figures: the purchase lane's counters of this worker
    (``drops.crowd.counters``, read as they stand: the lane itself never touches a Prometheus
    object) labelled with the process id, and each live drop's waiting room read from the
    database. Without the lane (no Redis, or SQLite) its families are present and empty."""

    def __init__(self, app_state: Any, services: Services) -> None:
        self.app_state = app_state
        self.services = services
        self.pid = str(os.getpid())

    def collect(self) -> Any:
        hot = self.app_state._state.get("drops_hot")  # never built by a scrape
        counters: DropCounters | None = getattr(hot, "counters", None)
        worker = [self.pid]
        decisions = CounterMetricFamily(
            "dropline_drop_gate_decisions", "The drop gate's verdicts, by outcome (this worker)",
            labels=["outcome", "worker"])
        refusals = CounterMetricFamily(
            "dropline_drop_refusals", "Drop purchases answered with a problem, by its type "
            "(this worker)", labels=["reason", "worker"])
        purchases = CounterMetricFamily(
            "dropline_drop_purchases", "Drop purchases answered with a new paid order or a "
            "stored answer sent again (this worker)", labels=["outcome", "worker"])
        batch = HistogramMetricFamily(
            "dropline_drop_batch_orders", "Orders per written batch (this worker)",
            labels=["worker"])
        write = HistogramMetricFamily(
            "dropline_drop_batch_write_seconds", "Time to write, charge and settle one batch "
            "(this worker)", labels=["worker"])
        if counters is not None:
            for outcome, number in sorted(counters.decisions.items()):
                decisions.add_metric([outcome, self.pid], number)
            for reason, number in sorted(counters.refusals.items()):
                refusals.add_metric([reason, self.pid], number)
            purchases.add_metric(["paid", self.pid], counters.paid)
            purchases.add_metric(["replayed", self.pid], counters.replayed)
            for family, tally in ((batch, counters.batch_orders),
                                  (write, counters.write_seconds)):
                _add_tally(family, worker, tally)
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
    histogram = Histogram(
        "dropline_http_request_duration_seconds", "Request duration by route and status class",
        ["method", "route", "status_class"], registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    registry.register(ShopCollector(services))
    registry.register(DropCollector(app.state, services))
    app.state.metrics_registry = registry
    app.add_middleware(RequestTimer, histogram=histogram)
    app.include_router(router)
