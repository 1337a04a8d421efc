"""What the purchase lane counts, for ``/metrics``: plain integers on the worker's ``HotPath``.

The lane answers thousands of purchases a second on one event loop; a Prometheus client
object per observation would take a lock and build label tuples each time. Here each
observation is an integer added to an attribute or a dict entry, on the event loop's thread
only (``purchase.respond``, ``purchase._take`` and ``HotPath._write_jobs`` all run there), so no
lock is needed. ``/metrics`` reads them at scrape time (``web.metrics``), from another thread:
a scrape may see a batch's count before its bucket, never a torn integer.

The figures are this process's, the lane's and the database path's alike (one instance per
process, ``app.state.drop_counters``). With several worker processes each publishes a
``snapshot`` of its own to a shared folder and the scrape adds them up (``web.metrics``;
docs/operations.md says why files and not Redis or the database)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

__all__ = ["BATCH_BOUNDS", "DropCounters", "Tally", "WRITE_BOUNDS"]

# Orders per written batch (the writer's MAX_BATCH is 1000).
BATCH_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
# Seconds one batch takes to be written, charged and settled.
WRITE_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Tally:
    """A histogram of plain integers: ``counts[i]`` observations at most ``bounds[i]`` (and
    above the last bound in the last slot), their sum and number."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.sum, "count": self.count}

    def add(self, snapshot: dict[str, Any]) -> None:
        """Another process's tally (its ``snapshot``, same bounds) added to this one."""
        for i, count in enumerate(snapshot["counts"][:len(self.counts)]):
            self.counts[i] += int(count)
        self.sum += float(snapshot["sum"])
        self.count += int(snapshot["count"])

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus's buckets: (upper bound, observations at most it), ending with +Inf."""
        total, buckets = 0, []
        counts = list(self.counts)  # a copy: the event loop may add while a scrape reads
        for bound, count in zip((*(str(float(b)) for b in self.bounds), "+Inf"), counts,
                                strict=True):
            total += count
            buckets.append((bound, total))
        return buckets


class DropCounters:
    """One worker's purchase-lane figures.

    ``decisions``: the gate's verdicts by outcome (``ok``, ``soldout``, ``limit``,
    ``ratelimited``, ``notopen``, ``ended``, ``token_used``, ``mismatch``, ``replay``).
    ``refusals``: purchases answered with a problem, by its type (``sold-out``,
    ``per-person-limit``, ``payment-declined``, ...; ``gate-unavailable`` when Redis failed).
    ``paid``: new paid orders answered; ``replayed``: stored answers sent again.
    ``batch_orders`` / ``write_seconds``: each written batch's orders and duration."""

    __slots__ = ("batch_orders", "decisions", "paid", "refusals", "replayed", "write_seconds")

    def __init__(self) -> None:
        self.decisions: dict[str, int] = {}
        self.refusals: dict[str, int] = {}
        self.paid = 0
        self.replayed = 0
        self.batch_orders = Tally(BATCH_BOUNDS)
        self.write_seconds = Tally(WRITE_BOUNDS)

    def decided(self, outcome: str) -> None:
        self.decisions[outcome] = self.decisions.get(outcome, 0) + 1

    def refused(self, reason: str) -> None:
        self.refusals[reason] = self.refusals.get(reason, 0) + 1

    def batch_written(self, orders: int, seconds: float) -> None:
        self.batch_orders.observe(orders)
        self.write_seconds.observe(seconds)

    def snapshot(self) -> dict[str, Any]:
        """The figures as plain JSON-able data; safe to take from another thread (each dict and
        list is copied in one step, under the GIL)."""
        return {"decisions": dict(self.decisions), "refusals": dict(self.refusals),
                "paid": self.paid, "replayed": self.replayed,
                "batch_orders": self.batch_orders.snapshot(),
                "write_seconds": self.write_seconds.snapshot()}

    @classmethod
    def summed(cls, snapshots: Iterable[dict[str, Any]]) -> DropCounters:
        """The figures of several processes added up."""
        total = cls()
        for snap in snapshots:
            for mine, theirs in ((total.decisions, snap["decisions"]),
                                 (total.refusals, snap["refusals"])):
                for key, number in theirs.items():
                    mine[key] = mine.get(key, 0) + int(number)
            total.paid += int(snap["paid"])
            total.replayed += int(snap["replayed"])
            total.batch_orders.add(snap["batch_orders"])
            total.write_seconds.add(snap["write_seconds"])
        return total
