"""Rate limits for the drop endpoints, per identity and per IP, behind one small Protocol.

``MemoryRateLimiter`` is the embedded default (one ``dropline serve`` process: the counters live
in that process). ``RedisRateLimiter`` shares the counters between workers and machines
(``settings.drops.redis_url``, ``DROPLINE_DROPS_REDIS_URL``); the limits are
``settings.drops``. Both count in fixed windows: cheap, and good enough to make a bot farm's
thousandth request per minute cost it a 429 rather than a hold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from dropline.config import DropsSettings


class RateLimiter(Protocol):
    def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        """Counts one request; returns None if allowed, else seconds until the window resets."""
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


class RedisRateLimiter:
    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_url(cls, url: str) -> RedisRateLimiter:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=0.5))

    def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = time.time()
        window = int(now // window_seconds)
        name = f"dl:rl:{key}:{window}"
        pipe = self._client.pipeline()
        pipe.incr(name)
        pipe.expire(name, window_seconds + 1)
        count = pipe.execute()[0]
        if count <= limit:
            return None
        return max(1, int((window + 1) * window_seconds - now + 0.999))


def make_limiter(limits: DropsSettings) -> RateLimiter:
    if limits.redis_url:
        return RedisRateLimiter.from_url(limits.redis_url)
    return MemoryRateLimiter()
