"""The gate's pipelined Redis connection (``drops.crowd.redis_pipe``), against the real Redis: batches in
flight together get their own replies, an error reply does not put the connection out of step,
a lost or silent connection fails its batch with redis-py's ConnectionError and the next batch
reconnects, and the URL's database is the one written."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import hiredis
import pytest
import redis
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from dropline.drops.crowd.gate import RedisGate
from dropline.drops.crowd.redis_pipe import Pipe, pack, reply_error
from tests.drops.builders import REDIS_URL


def kwargs() -> dict[str, Any]:
    return aredis.ConnectionPool.from_url(REDIS_URL).connection_kwargs


@pytest.fixture
def client(redis_client) -> Any:
    """The test Redis and a key prefix of this test's own, whose keys are removed after."""
    prefix = f"test:pipe:{uuid.uuid4().hex[:8]}:"
    yield redis_client, prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}*"))
    if keys:
        redis_client.delete(*keys)


def test_concurrent_batches_on_one_connection_each_get_their_own_replies(client):
    sync, prefix = client

    async def scenario() -> list[list[Any]]:
        pipe = Pipe(kwargs())
        try:
            return await asyncio.gather(*(pipe.send(pack(
                [["SET", f"{prefix}{b}:{i}", f"{b}-{i}"] for i in range(50)]
                + [["GET", f"{prefix}{b}:{i}"] for i in range(50)]), 100) for b in range(20)))
        finally:
            pipe.close()

    results = asyncio.run(scenario())
    for b, replies in enumerate(results):
        assert replies[:50] == [b"OK"] * 50
        assert replies[50:] == [f"{b}-{i}".encode() for i in range(50)]
    assert sync.get(f"{prefix}7:3") == b"7-3"  # written in the URL's database


def test_an_error_reply_is_returned_in_place_and_the_connection_stays_in_step(client):
    _, prefix = client

    async def scenario() -> tuple[list[Any], list[Any]]:
        pipe = Pipe(kwargs())
        try:
            first = await pipe.send(pack([["SET", f"{prefix}a", "1"], ["INCR", f"{prefix}a", "x"],
                                          ["EVALSHA", "0" * 40, "0"], ["GET", f"{prefix}a"]]), 4)
            second = await pipe.send(pack([["GET", f"{prefix}a"]]), 1)
            return first, second
        finally:
            pipe.close()

    first, second = asyncio.run(scenario())
    assert first[0] == b"OK" and first[3] == b"1"
    assert isinstance(first[1], hiredis.ReplyError)
    assert type(reply_error(first[1])) is ResponseError
    assert isinstance(reply_error(first[2]), NoScriptError)
    assert second == [b"1"]


def test_a_killed_connection_fails_only_as_a_connection_error_and_the_next_batch_reconnects(
        client):
    sync, prefix = client

    async def scenario() -> tuple[list[str], list[Any]]:
        pipe = Pipe(kwargs())
        try:
            (own_id,) = await pipe.send(pack([["CLIENT", "ID"]]), 1)
            sync.client_kill_filter(_id=own_id)  # as a Redis restart would
            outcomes = []
            for _ in range(2):
                try:
                    replies = await pipe.send(pack([["SET", f"{prefix}k", "v"],
                                                    ["CLIENT", "ID"]]), 2)
                except RedisConnectionError:
                    outcomes.append("connection error")
                else:
                    outcomes.append("ok")
                    return outcomes, replies
            return outcomes, []
        finally:
            pipe.close()

    outcomes, replies = asyncio.run(scenario())
    assert outcomes in (["ok"], ["connection error", "ok"])
    assert replies[0] == b"OK" and sync.get(f"{prefix}k") == b"v"


def test_a_batch_redis_does_not_answer_in_time_fails_and_the_next_batch_reconnects(client):
    _, prefix = client

    async def scenario() -> tuple[BaseException | None, list[Any]]:
        pipe = Pipe(kwargs(), timeout=0.3)
        try:
            try:
                await pipe.send(pack([["BLPOP", f"{prefix}never", "5"]]), 1)
            except RedisConnectionError as exc:
                failure: BaseException | None = exc
            else:
                failure = None
            return failure, await pipe.send(pack([["PING"]]), 1)
        finally:
            pipe.close()

    failure, replies = asyncio.run(scenario())
    assert isinstance(failure, RedisConnectionError)
    assert replies == [b"PONG"]


def test_the_async_gate_uses_the_pipe_and_a_tls_url_keeps_redis_pys_connection():
    plain = RedisGate(aredis.Redis.from_url(REDIS_URL))
    tls = RedisGate(aredis.Redis.from_url("rediss://127.0.0.1:6380/0"))
    sync = RedisGate(redis.Redis.from_url(REDIS_URL))
    assert plain._pipe is not None
    assert tls._pipe is None and sync._pipe is None
