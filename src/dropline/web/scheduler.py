"""The background worker: delivers webhooks soon after each commit (woken by an after-commit
hook) and on a timer for retries, and purges old idempotency records hourly. ``serve`` runs it
in-process for the embedded default; production runs the same passes in ``dropline worker``."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import httpx

from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.drops.jobs import reclaim_drops
from dropline.fulfilment.jobs import run_fulfilment_jobs
from dropline.idempotency.jobs import purge_idempotency_records
from dropline.memberships.jobs import run_membership_jobs
from dropline.webhooks.jobs import deliver_due

log = logging.getLogger("dropline.worker")


class BackgroundWorker:
    def __init__(self, db: Database, clock: Clock, settings: Settings,
                 interval_seconds: float = 5.0) -> None:
        self._db, self._clock, self._settings = db, clock, settings
        self._interval = interval_seconds
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
        report = deliver_due(self._db, clock=self._clock, client=client,
                             max_attempts=self._settings.webhook_max_attempts)
        now = self._clock.now()
        if self._last_purge is None or (now - self._last_purge).total_seconds() >= 3600:
            purge_idempotency_records(self._db, clock=self._clock,
                                      retention_hours=self._settings.idempotency_retention_hours)
            self._last_purge = now
        run_fulfilment_jobs(self._db, clock=self._clock)
        run_membership_jobs(self._db, clock=self._clock, settings=self._settings)
        reclaim_drops(self._db, clock=self._clock)
        return report.attempted

    def _run(self) -> None:
        with httpx.Client(timeout=self._settings.webhook_timeout_seconds) as client:
            while not self._stop.is_set():
                try:
                    self.run_once(client)
                except Exception:  # keep the worker alive; the failure is logged
                    log.exception("background job failed")
                self._wake.wait(self._interval)
                self._wake.clear()
