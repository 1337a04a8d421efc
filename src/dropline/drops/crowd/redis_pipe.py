"""One pipelined Redis connection per worker for the gate's coalesced batches.

The gate sends its work in batches (``drops.crowd.coalesce``): hundreds of EVALSHAs, then
hundreds of SETs, per pipeline. Through redis-py's asyncio connection each reply is one awaited
``read_response`` (a timeout context, a parser call, a coroutine), which made reading replies
the largest single cost of a worker under a crowd. Here the connection is an
``asyncio.Protocol``: a batch is one write of RESP packed by the caller and one future;
``data_received`` feeds hiredis and completes each batch once all its replies are in. Redis
answers in order, so several batches may be in flight on the one connection (a FIFO of waiting
batches), and a batch that contains an error reply still reads all its replies, so the
connection never falls out of step.

A lost connection fails every waiting batch with redis-py's ``ConnectionError`` (the hot path
answers 503 and the client's retry, same key, is safe); the next batch reconnects. A batch not
answered within ``timeout`` seconds closes the connection the same way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


def pack(commands: list[list[Any]]) -> bytes:
    """RESP arrays of bulk strings (ints and strs encoded as redis-py would: str(n), UTF-8)."""
    out: list[bytes] = []
    append = out.append
    for command in commands:
        append(b"*%d\r\n" % len(command))
        for arg in command:
            kind = type(arg)
            if kind is str:
                arg = arg.encode()
            elif kind is int:
                arg = b"%d" % arg
            elif kind is not bytes:
                arg = str(arg).encode()
            append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def reply_error(reply: hiredis.ReplyError) -> ResponseError:
    message = str(reply)
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


def raise_first_error(replies: list[Any]) -> list[Any]:
    """The replies, unless one is an error reply: then the first as redis-py's exception."""
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            raise reply_error(reply)
    return replies


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[int, list[Any], asyncio.Future[list[Any]]]] = deque()
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting, reader = self.waiting, self.reader
        while waiting:
            expected, replies, future = waiting[0]
            while len(replies) < expected:
                reply = reader.gets()
                if reply is False:
                    return  # the rest is still on its way
                replies.append(reply)
            waiting.popleft()
            if not future.done():
                future.set_result(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"the connection to Redis was lost ({exc or 'closed'})")
        while self.waiting:
            future = self.waiting.popleft()[2]
            if not future.done():
                future.set_exception(self.lost)

    def send(self, packed: bytes, expected: int) -> asyncio.Future[list[Any]]:
        future = asyncio.get_running_loop().create_future()
        if self.lost is not None or self.transport is None:
            future.set_exception(self.lost or RedisConnectionError("not connected"))
            return future
        self.waiting.append((expected, [], future))
        self.transport.write(packed)
        return future

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pipe:
    """Sends packed batches on one connection (``kwargs``: redis-py's connection keywords of
    the gate's pool: host/port or path, db, username, password)."""

    def __init__(self, kwargs: dict[str, Any], *, timeout: float = 10.0) -> None:
        self._kwargs = kwargs
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None

    async def send(self, packed: bytes, expected: int) -> list[Any]:
        """The replies of ``expected`` commands, in order; error replies are returned as
        ``hiredis.ReplyError`` values (``reply_error`` turns one into redis-py's exception)."""
        connection = await self._connected()
        future = connection.send(packed, expected)
        timer = asyncio.get_running_loop().call_later(self._timeout, connection.close)
        try:
            return await future
        finally:
            timer.cancel()

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and connection.lost is None:
            return connection
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._connection is None or self._connection.lost is not None:
                self._connection = await self._open()
            return self._connection

    async def _open(self) -> _Connection:
        loop, kw = asyncio.get_running_loop(), self._kwargs
        try:
            if kw.get("path"):
                _, connection = await asyncio.wait_for(
                    loop.create_unix_connection(_Connection, kw["path"]), self._timeout)
            else:
                _, connection = await asyncio.wait_for(loop.create_connection(
                    _Connection, kw.get("host", "localhost"), kw.get("port", 6379)),
                    self._timeout)
        except (TimeoutError, OSError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from None
        hello: list[list[Any]] = []
        if kw.get("password"):
            hello.append(["AUTH", *([kw["username"]] if kw.get("username") else []),
                          kw["password"]])
        if kw.get("db"):
            hello.append(["SELECT", kw["db"]])
        if hello:
            try:
                raise_first_error(await connection.send(pack(hello), len(hello)))
            except ResponseError:
                connection.close()
                raise
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
