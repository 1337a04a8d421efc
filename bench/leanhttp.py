"""A lean asyncio HTTP/1.1 keep-alive client for the benchmarks: just enough of HTTP to send
JSON requests over connections opened in advance and read Content-Length responses.

Why not httpx: with thousands of concurrent requests its per-request overhead (pool bookkeeping,
header models, h11 parsing in Python) was larger than the server's work, so the benchmark
measured the load generator. Here a connection is an ``asyncio.Protocol``: a request is one
``write`` of prebuilt bytes and one future, completed from ``data_received`` once the header
block and ``Content-Length`` bytes are in (no stream reader: its ``readuntil`` and
``readexactly`` cost two more futures and wake-ups per response). The load generator shares the
server's two cores, so every microsecond it spends is one the server does not get.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

Response = tuple[int, dict[str, str], bytes]


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._lost: BaseException | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("the server closed the connection")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def _complete(self) -> None:
        waiter, buffer = self._waiter, self._buffer
        if waiter is None or waiter.done():
            return
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = buffer[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        total = end + 4 + int(headers.get("content-length", "0"))
        if len(buffer) < total:
            return
        body = bytes(buffer[end + 4:total])
        del buffer[:total]
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            waiter.set_exception(ValueError(f"not an HTTP response: {lines[0][:80]!r}"))
            return
        waiter.set_result((status, headers, body))

    async def request(self, method: str, path: str, *, headers: dict[str, str],
                      body: bytes = b"") -> Response:
        if self._lost is not None or self.transport is None:
            raise ConnectionResetError("the connection is closed")
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
                f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        head.extend(f"{k}: {v}" for k, v in headers.items())
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status, response_headers, content = await self._waiter
        self._waiter = None
        if response_headers.get("connection", "").lower() == "close":
            raise ConnectionResetError("the server closed the connection")
        return status, response_headers, content

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """``size`` keep-alive connections, opened by ``open`` (before the timed part); requests
    borrow one each. A connection that fails is replaced (bounded by the caller's retries)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()

    async def _connect(self) -> Connection:
        _, connection = await asyncio.get_running_loop().create_connection(
            Connection, self.host, self.port)
        return connection

    async def open(self) -> None:
        for conn in await asyncio.gather(*(self._connect() for _ in range(self.size))):
            self._idle.put_nowait(conn)

    async def reopen(self) -> None:
        """Every connection closed and opened anew (a server closes idle keep-alive
        connections after a few seconds: a crowd after a pause would otherwise pay the
        reconnects in its timed part)."""
        self.close()
        await self.open()

    async def request(self, method: str, path: str, *, headers: dict[str, str],
                      json_body: Any = None) -> tuple[int, dict[str, str], Any]:
        body = json.dumps(json_body).encode() if json_body is not None else b""
        conn = await self._idle.get()
        try:
            status, response_headers, content = await conn.request(method, path,
                                                                   headers=headers, body=body)
        except (OSError, ValueError):
            conn.close()
            self._idle.put_nowait(await self._connect())
            raise
        self._idle.put_nowait(conn)
        return status, response_headers, json.loads(content) if content else {}

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
