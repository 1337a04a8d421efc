"""Request ids: each request gets one, logged with every line written while it is served
(``dropline.logs``) and returned as ``X-Request-Id``.

A load balancer or edge cache that already named the request (``X-Request-Id``) is followed,
so one id runs through every tier's logs, but only if the value is a sane token: at most 64
characters of ``[A-Za-z0-9._-]``. Anything else (a newline that would forge a log line, a
megabyte, JSON) is replaced by a fresh id rather than echoed."""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropline.logs import request_id

__all__ = ["RequestIdMiddleware", "sane_request_id"]

HEADER = b"x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def sane_request_id(given: str | None) -> str:
    """``given`` if it is a sane token, else a new random id (22 URL-safe characters)."""
    if given and _SANE.fullmatch(given):
        return given
    return secrets.token_urlsafe(16)


class RequestIdMiddleware:
    """ASGI middleware: the request's id in ``dropline.logs.request_id`` while it is served,
    and in the response's ``X-Request-Id`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        rid = sane_request_id(given.decode("latin-1") if given is not None else None)
        scope.setdefault("state", {})["request_id"] = rid

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", [])
                           if name.lower() != HEADER]
                headers.append((HEADER, rid.encode()))
                message["headers"] = headers
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, sending)
        finally:
            request_id.reset(token)
