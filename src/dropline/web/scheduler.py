"""The background worker. Webhooks go out soon after each commit (an after-commit hook wakes
the worker) and on a short timer for retries; the domain jobs (fulfilment planning, membership
renewals, drop reclaim, payment recovery, idempotency clean-up) run on their own, slower timer, never on every
commit: a flash crowd commits hundreds of times a second. ``serve`` runs it in-process for the
embedded default; production runs the same passes in ``dropline worker``.

Any number of workers may run on any number of nodes. Webhook deliveries are claimed row by
row (``webhooks.jobs``), so workers share them. Each domain job runs in one process at a time:
it is run under its lock (``db.exclusive_job``), and a worker that finds the lock taken skips
the job this pass. The lock goes with its process, so a worker that dies mid-job holds up
nobody; what it left half done is finished by the job's own claims (a charge's lease, a
window still open, a payment still pending). ``tests/e2e/test_jobs_once.py`` kills workers in
the middle of each job and counts the effects."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

import httpx

from dropline.db import exclusive_job
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
        webhooks = self._settings.webhooks
        report = deliver_due(self._db, clock=self._clock, client=client,
                             max_attempts=webhooks.max_attempts,
                             targets=TargetPolicy.from_settings(webhooks),
                             lease_seconds=webhooks.lease_seconds,
                             failpoint=self._settings.testing.failpoint)
        return report.attempted

    def domain_jobs(self) -> list[tuple[str, Callable[[], object]]]:
        """Each domain job by the name its lock goes by, in the order a pass runs them."""
        db, clock, settings, services = self._db, self._clock, self._settings, self._services
        failpoint = settings.testing.failpoint
        jobs: list[tuple[str, Callable[[], object]]] = [
            ("idempotency.purge", self._purge_idempotency_records),
            ("fulfilment", lambda: run_fulfilment_jobs(db, clock=clock, solver=services.solver,
                                                       failpoint=failpoint)),
            ("memberships", lambda: run_membership_jobs(
                db, clock=clock, settings=settings,
                provider=services.payments,  # type: ignore[arg-type]
                drop_days=started_drop_days)),
            ("drops.reclaim", lambda: reclaim_drops(db, clock=clock,
                                                    redis_url=settings.redis.url)),
            # Charges whose settlement never ran (a worker died between the two) are settled
            # within a jobs interval or two of the grace.
            ("payments.recovery", lambda: recover_payments(
                db, clock=clock, provider=services.payments, policy=services.checkout,
                redis_url=settings.redis.url, failpoint=failpoint)),
        ]
        # Registered by the root (the order mail outbox ...), named by their function.
        jobs += [(_job_name(job), job) for job in services.jobs]
        return jobs

    def run_domain_jobs(self) -> None:
        for name, job in self.domain_jobs():
            with exclusive_job(self._db, name) as mine:
                if mine:
                    job()

    def _purge_idempotency_records(self) -> None:
        now = self._clock.now()
        if self._last_purge is None or (now - self._last_purge).total_seconds() >= 3600:
            purge_idempotency_records(self._db, clock=self._clock,
                                      retention_hours=self._settings.idempotency.retention_hours)
            self._last_purge = now

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


def _job_name(job: Callable[[], object]) -> str:
    func = getattr(job, "func", job)  # a functools.partial names its function
    return f"{func.__module__}.{func.__qualname__}"
