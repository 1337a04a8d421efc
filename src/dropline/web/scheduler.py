"""The background worker. Webhooks go out soon after each commit (an after-commit hook wakes
the worker) and on a short timer for retries; the domain jobs (fulfilment planning, membership
renewals, drop reclaim, payment recovery, idempotency clean-up) run on their own, slower timer, never on every
commit: a flash crowd commits hundreds of times a second. ``serve`` runs it in-process for the
embedded default; production runs the same passes in ``dropline worker``."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

import httpx

from dropline.drops.jobs import reclaim_drops
from dropline.drops.service import started_drop_days
from dropline.fulfilment.jobs import run_fulfilment_jobs
from dropline.idempotency.jobs import purge_idempotency_records
from dropline.memberships.jobs import run_membership_jobs
from dropline.recovery import recover_payments
from dropline.services import Services
from dropline.webhooks.jobs import deliver_due
from dropline.webhooks.targets import TargetPolicy

log = logging.getLogger("dropline.worker")


class BackgroundWorker:
    """Built from the process's services (``bootstrap.build_services``): its database, clock
    and settings, and the payment provider the membership jobs use."""

    def __init__(self, services: Services, interval_seconds: float = 5.0,
                 jobs_interval_seconds: float = 30.0) -> None:
        self._services = services
        self._db, self._clock, self._settings = services.db, services.clock, services.settings
        self._interval = interval_seconds
        self._jobs_interval = jobs_interval_seconds
        self._last_jobs: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge: datetime | None = None

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dropline-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_once(self, client: httpx.Client) -> int:
        """One pass of every job; returns how many webhook deliveries were attempted."""
        attempted = self.deliver_webhooks(client)
        self.run_domain_jobs()
        return attempted

    def deliver_webhooks(self, client: httpx.Client) -> int:
        report = deliver_due(self._db, clock=self._clock, client=client,
                             max_attempts=self._settings.webhooks.max_attempts,
                             targets=TargetPolicy.from_settings(self._settings.webhooks))
        return report.attempted

    def run_domain_jobs(self) -> None:
        now = self._clock.now()
        if self._last_purge is None or (now - self._last_purge).total_seconds() >= 3600:
            purge_idempotency_records(self._db, clock=self._clock,
                                      retention_hours=self._settings.idempotency.retention_hours)
            self._last_purge = now
        run_fulfilment_jobs(self._db, clock=self._clock, solver=self._services.solver)
        run_membership_jobs(self._db, clock=self._clock, settings=self._settings,
                            provider=self._services.payments,  # type: ignore[arg-type]
                            drop_days=started_drop_days)
        reclaim_drops(self._db, clock=self._clock, redis_url=self._settings.redis.url)
        # Charges whose settlement never ran (a worker died between the two) are settled
        # within a jobs interval or two of the grace.
        recover_payments(self._db, clock=self._clock, provider=self._services.payments,
                         policy=self._services.checkout, redis_url=self._settings.redis.url)
        for job in self._services.jobs:  # registered by the root (the order mail outbox ...)
            job()

    def _run(self) -> None:
        with httpx.Client(timeout=self._settings.webhooks.timeout_seconds) as client:
            while not self._stop.is_set():
                try:
                    self.deliver_webhooks(client)
                    due = self._last_jobs is None or \
                        time.monotonic() - self._last_jobs >= self._jobs_interval
                    if due:
                        self._last_jobs = time.monotonic()
                        self.run_domain_jobs()
                except Exception:  # keep the worker alive; the failure is logged
                    log.exception("background job failed")
                # At most five passes a second however often commits wake it.
                self._stop.wait(0.2)
                self._wake.wait(self._interval)
                self._wake.clear()
