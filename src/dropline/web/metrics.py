"""What to watch: ``/metrics`` in Prometheus's text format, and liveness vs readiness.

Two kinds of figures:

* **Measured in the process**: request latency by route template and status class
  (``dropline_http_request_duration_seconds``; the drop purchase lane answers before the
  middleware stack and is counted by its own bench), edge purges given up.
* **Read from the database at scrape time** (the same from any node or worker): the mail
  outbox and webhook deliveries by status with the age of the oldest one due, and payments of
  the last 15 minutes by outcome. Each scrape costs a few indexed ``GROUP BY`` queries.

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
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropline.notifications.models import MailOutboxItem
from dropline.payments.models import Payment
from dropline.services import Services
from dropline.webhooks.models import WebhookDelivery

__all__ = ["install_metrics"]

router = APIRouter(tags=["ops"])
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
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
                    due_at = due if due.tzinfo else due.replace(tzinfo=now.tzinfo)
                    late = max(late, (now - due_at).total_seconds())
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
    app.state.metrics_registry = registry
    app.add_middleware(RequestTimer, histogram=histogram)
    app.include_router(router)
