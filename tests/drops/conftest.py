"""Fixtures shared by the drop tests that talk to Redis (the gate, its pipelined connection)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.drops.builders import REDIS_URL


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client of the test Redis (``DROPLINE_TEST_REDIS_URL``, DB 3 by default); fails,
    saying what to do, when Redis is not running."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}): start it, or set "
                    "DROPLINE_TEST_REDIS_URL")
    yield client
    client.close()
