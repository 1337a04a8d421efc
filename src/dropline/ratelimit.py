"""Rate limiting for the whole app: one small Protocol, counted in fixed windows.

``MemoryRateLimiter`` is the embedded default (SQLite, one ``dropline serve`` process: the
counters live in that process). ``RedisRateLimiter`` shares the counters between workers and
machines, as production needs. Both count in fixed windows: cheap, and good enough to make a
bot farm's thousandth request per minute cost it a 429 rather than a hold. ``make_limiter``
picks one from a Redis URL (or none).

The counters are named here once (``identity_key``, ``ip_key``, ``counter_name``): the drop
engine's gate (``drops.crowd.gate``) counts the same identity and IP limits inside its Lua
script, so a purchase stays one round trip, in the same Redis counters as ``RedisRateLimiter``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

DEFAULT_PREFIX = "dl:"


def identity_key(customer_id: int) -> str:
    return f"c:{customer_id}"


def ip_key(ip: str) -> str:
    return f"ip:{ip}"


def counter_name(prefix: str, key: str, window: int) -> str:
    """The Redis counter of ``key`` in fixed window number ``window``."""
    return f"{prefix}rl:{key}:{window}"


class RateLimiter(Protocol):
    def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        """Counts one request; returns None if allowed, else seconds until the window resets."""
        ...

    def peek(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        """Counts nothing: None if fewer than ``limit`` were counted in this window, else
        seconds until it resets (a cool-down after too many failures)."""
        ...


class MemoryRateLimiter:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = self._now()
        window = int(now // window_seconds)
        with self._lock:
            if len(self._counts) > 100_000:  # bounded memory: old windows are dropped
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= window}
            count = self._counts.get((key, window), 0) + 1
            self._counts[(key, window)] = count
        if count <= limit:
            return None
        return max(1, int((window + 1) * window_seconds - now + 0.999))

    def peek(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = self._now()
        window = int(now // window_seconds)
        with self._lock:
            count = self._counts.get((key, window), 0)
        if count < limit:
            return None
        return max(1, int((window + 1) * window_seconds - now + 0.999))


class RedisRateLimiter:
    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str) -> RedisRateLimiter:
        return cls(redis.Redis.from_url(url, socket_timeout=0.5))

    def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = time.time()
        window = int(now // window_seconds)
        name = counter_name(self._prefix, key, window)
        pipe = self._client.pipeline()
        pipe.incr(name)
        pipe.expire(name, window_seconds + 1)
        count = pipe.execute()[0]
        if count <= limit:
            return None
        return max(1, int((window + 1) * window_seconds - now + 0.999))

    def peek(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = time.time()
        window = int(now // window_seconds)
        count = int(self._client.get(counter_name(self._prefix, key, window)) or 0)
        if count < limit:
            return None
        return max(1, int((window + 1) * window_seconds - now + 0.999))


def make_limiter(redis_url: str | None) -> RateLimiter:
    """Counters shared through Redis when a URL is given, else in this process."""
    if redis_url:
        return RedisRateLimiter.from_url(redis_url)
    return MemoryRateLimiter()
