"""A real server for the drop engine's tests: uvicorn in a thread, on PostgreSQL with Redis
(the engine's asyncio machinery needs a running server's event loop)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from dropline.web.app import create_app
from tests.drops.builders import REDIS_URL


class Server:
    def __init__(self, app: Any) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def _sections(settings: Any, **flat: Any) -> dict[str, Any]:
    """model_copy updates for the sections of the flat overrides the helpers take."""
    names = {"redis_url": ("redis", "url"),
             "idempotency_lease_seconds": ("idempotency", "lease_seconds"),
             "identity_per_minute": ("drops", "identity_per_minute"),
             "lease_seconds": ("drops", "lease_seconds")}
    update: dict[str, Any] = {}
    for key, value in flat.items():
        section, name = names[key]
        current = update.get(section) or getattr(settings, section)
        update[section] = current.model_copy(update={name: value})
    return update


@contextmanager
def serve_gated(db, clock, settings, redis_client, *, prefix: str | None = None,
                **overrides: Any) -> Iterator[Server]:
    """A real server on the gate, its Redis keys under a prefix of its own (removed after),
    or under ``prefix`` (a server process's, which the test cleans up)."""
    own = prefix is None
    prefix = prefix or f"dl:h3t:{uuid.uuid4().hex[:8]}:"
    app = create_app(settings.model_copy(
        update=_sections(settings, **{"redis_url": REDIS_URL, **overrides})),
                     clock=clock, db=db, run_worker=False)
    app.state.drops_redis_prefix = prefix
    server = Server(app)
    server.prefix = prefix  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
        keys = list(redis_client.scan_iter(match=f"{prefix}*")) if own else []
        if keys:
            redis_client.delete(*keys)
