"""A lean asyncio HTTP/1.1 keep-alive client for the benchmarks: just enough of HTTP to send
JSON requests over connections opened in advance and read Content-Length responses.

Why not httpx: with thousands of concurrent requests its per-request overhead (pool bookkeeping,
header models, h11 parsing in Python) was larger than the server's work, so the benchmark
measured the load generator. Here a request is one ``write`` of prebuilt bytes and a response is
a header block read up to the blank line plus ``Content-Length`` bytes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, method: str, path: str, *, headers: dict[str, str],
                      body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
                f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        head.extend(f"{k}: {v}" for k, v in headers.items())
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        response_headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                response_headers[name.strip().lower()] = value.strip()
        length = int(response_headers.get("content-length", "0"))
        content = await self.reader.readexactly(length) if length else b""
        if response_headers.get("connection", "").lower() == "close":
            raise ConnectionResetError("the server closed the connection")
        return status, response_headers, content

    def close(self) -> None:
        self.writer.close()


class Pool:
    """``size`` keep-alive connections, opened by ``open`` (before the timed part); requests
    borrow one each. A connection that fails is replaced (bounded by the caller's retries)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()

    async def _connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return Connection(reader, writer)

    async def open(self) -> None:
        for conn in await asyncio.gather(*(self._connect() for _ in range(self.size))):
            self._idle.put_nowait(conn)

    async def request(self, method: str, path: str, *, headers: dict[str, str],
                      json_body: Any = None) -> tuple[int, dict[str, str], Any]:
        body = json.dumps(json_body).encode() if json_body is not None else b""
        conn = await self._idle.get()
        try:
            status, response_headers, content = await conn.request(method, path,
                                                                   headers=headers, body=body)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn.close()
            self._idle.put_nowait(await self._connect())
            raise
        self._idle.put_nowait(conn)
        return status, response_headers, json.loads(content) if content else {}

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
