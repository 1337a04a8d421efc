"""Coalescing: many concurrent single-item calls served by one call with all the items.

The drop's hot path does three things per purchase that cost a round trip each: resolving the
shopper's session (PostgreSQL), asking the gate (Redis) and writing the order (PostgreSQL).
Under a flash crowd thousands of requests ask for them within milliseconds, and a round trip per
request would make the event loop spend its time on per-call overhead (an awaited EVALSHA
costs several times what the same command costs inside a pipeline). A ``Coalescer`` turns them into
one call per batch:

* the first item is sent at once, alone (an idle shop pays no added latency, no timer);
* items that arrive while ``parallel`` batches are in flight wait and go together in the next
  one, so batches grow with load by themselves, up to ``max_batch``;
* with ``min_batch``/``linger``: while busy (a batch in flight, or one started within
  ``BUSY_SECONDS``), a further batch starts only once ``min_batch`` items wait or ``linger``
  seconds have passed; a caller after a quiet spell is still served at once. Where a batch
  has a high fixed cost, this keeps a crowd's trickle from being written a few items at a
  time.

``run`` receives the items and returns one result per item, in order; a result that is an
exception is raised to that item's caller only, and an exception from ``run`` itself reaches
every caller of the batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BUSY_SECONDS = 0.05


class Coalescer(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]], *,
                 max_batch: int, parallel: int = 1, min_batch: int = 1,
                 linger: float = 0.0) -> None:
        self._run_batch = run
        self._max = max_batch
        self._parallel = parallel
        self._min = min_batch
        self._linger = linger
        self._lingering: asyncio.TimerHandle | None = None
        self._last_launch = 0.0
        self._in_flight = 0
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start()
        return await future

    def _start(self, *, lingered: bool = False) -> None:
        while self._pending and self._in_flight < self._parallel:
            busy = self._in_flight or time.monotonic() - self._last_launch < BUSY_SECONDS
            if busy and len(self._pending) < self._min and self._linger and not lingered:
                if self._lingering is None:  # wait a little for more (or for a free slot)
                    self._lingering = asyncio.get_running_loop().call_later(
                        self._linger, self._lingered)
                return
            if self._lingering is not None:
                self._lingering.cancel()
                self._lingering = None
            batch, self._pending = self._pending[:self._max], self._pending[self._max:]
            self._launch(batch)
            lingered = False  # the wait served this batch; a next one waits afresh

    def _lingered(self) -> None:
        self._lingering = None
        self._start(lingered=True)

    def _launch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self._last_launch = time.monotonic()
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._serve(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run_batch([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} got {len(results)} results")
        except BaseException as exc:  # every caller of the batch learns why
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller went away (cancelled)
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._start()
