"""Who acts in an HTTP request, for the audit trail (``dropline.audit.actor``)."""

from __future__ import annotations

from typing import Any

from dropline.audit.actor import acting_as
from dropline.clock import SystemClock

__all__ = ["ActorMiddleware"]


class ActorMiddleware:
    """Pure ASGI middleware: a fresh box per HTTP request, carrying the app's clock. Requests
    start as ``anonymous``; the auth dependencies name the caller (``audit.set_actor``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        clock = getattr(services, "clock", None) or SystemClock()
        with acting_as("anonymous", clock):
            await self.app(scope, receive, send)
