"""Purging an edge cache (Varnish, a CDN) by surrogate key, off the request's thread.

The storefront's public pages carry ``Surrogate-Key`` headers (``web.caching``); when a commit
changes what a page shows, the purge hub there hands the keys to the process's
:class:`EdgePurger` after the commit. :class:`BackgroundPurger` sends them from one thread, so
a request never waits on the edge: keys that arrive while a purge is in flight go together in
the next one, and a failed purge is retried with backoff. A purge that still fails (or one lost
with the process) leaves the page stale for at most its ``s-maxage``: the bound this design
accepts, as a CDN's purge API would. The adapter behind the port (``adapters.varnish``) is the
composition root's choice (``DROPLINE_EDGE_PURGE_URL``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

__all__ = ["BackgroundPurger", "EdgePurger"]

log = logging.getLogger(__name__)


class EdgePurger(Protocol):
    """Invalidates every cached object carrying any of ``keys``; raises if the edge refused."""

    def purge(self, keys: Iterable[str]) -> None: ...


class BackgroundPurger:
    """An :class:`EdgePurger` that returns at once and purges from its own thread."""

    def __init__(self, edge: EdgePurger, *, attempts: int = 4, backoff: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.edge = edge
        self.attempts = attempts
        self.backoff = backoff
        self._sleep = sleep
        self._keys: set[str] = set()
        self._wake = threading.Condition()
        self._busy = False
        self.failed = 0  # purges given up after every attempt (for /metrics and the tests)
        self._thread = threading.Thread(target=self._run, name="edge-purge", daemon=True)
        self._thread.start()

    def purge(self, keys: Iterable[str]) -> None:
        with self._wake:
            self._keys.update(keys)
            self._wake.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits until every key handed over so far has been sent (or given up); for tests
        and for a clean shutdown. True when idle within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._keys or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
            return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._keys:
                    self._wake.wait()
                keys, self._keys = sorted(self._keys), set()
                self._busy = True
            try:
                self._send(keys)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _send(self, keys: list[str]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                self.edge.purge(keys)
                return
            except Exception as exc:  # the edge's refusal or a network error, alike
                if attempt == self.attempts:
                    self.failed += 1
                    log.warning("edge purge of %s failed after %d attempts: %s",
                                " ".join(keys), attempt, exc)
                    return
                self._sleep(self.backoff * 2 ** (attempt - 1))
