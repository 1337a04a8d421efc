"""Running the app under uvicorn: one process, or several with a listening socket each, and
in each the start-up's objects frozen out of the garbage collector's sight (``worker_app``).

uvicorn's ``--workers`` binds one socket in the supervisor and every worker accepts from it.
Which worker accepts a connection is then a race between their event loops, and keep-alive
connections stay where they landed: when a crowd connects at once, one worker can end up
holding most of the connections and set the pace while the other idles. On Linux each worker here listens on a socket of its own
bound with ``SO_REUSEPORT``, and the kernel spreads new connections over them by a hash of the
client's address and port (as nginx's ``reuseport``), whatever each worker is doing.

uvicorn's supervisor (restarts of dead or hung workers, signals, health checks) is used as it
is; each worker is handed a ``ReusePortListener`` in place of a socket, which becomes that
worker's own listening socket when the worker process unpickles it. The supervisor itself
listens on nothing: a socket in the group that nobody accepts from would strand the
connections the kernel gave it. Elsewhere (no ``SO_REUSEPORT`` balancing), the workers share one
socket, as with uvicorn's own ``--workers``.

Caveat, as with any ``SO_REUSEPORT`` server: connections a worker had accepted into its backlog
but not yet served are reset if that worker dies; clients retry (the purchase endpoint is
idempotent).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.importer import import_from_string
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("uvicorn.error")

# uvloop and httptools are pinned (uvicorn's "auto" picks them when installed); a worker busy
# with a flash crowd answers the supervisor's ping late, so it gets a minute, not uvicorn's 5 s,
# before being restarted mid-drop.
UVICORN_OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": "httptools",
                                   "timeout_worker_healthcheck": 60}


def balanced_by_kernel() -> bool:
    """Whether this platform spreads connections over ``SO_REUSEPORT`` listeners (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bound_socket(host: str, port: int, *, reuseport: bool = True) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening, with ``SO_REUSEPORT`` unless
    ``reuseport`` is false: a worker's own socket (``_bind_in_worker``), or the supervisor's
    check, closed at once, that the port is free for the sockets to come."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_in_worker(host: str, port: int) -> socket.socket:
    try:
        return bound_socket(host, port)
    except OSError as exc:  # the supervisor stops rather than restarting a worker forever
        log.error("could not listen on %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)


class ReusePortListener:
    """Stands in for a socket in uvicorn's supervisor; unpickled in a worker process (uvicorn
    starts workers with ``spawn``), it is that worker's own ``SO_REUSEPORT`` socket."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return _bind_in_worker, (self.host, self.port)


# A young-generation collection every 10,000 net allocations instead of 700: with thousands of
# requests in flight most young objects are still alive when it runs, so a lower threshold walks
# them again and again for nothing.
GC_THRESHOLDS = (10_000, 10, 10)


def worker_app(factory: str) -> Any:
    """The app of one worker process: ``factory`` (an import string) called, then every object
    alive at that point (modules, routes, schemas, ORM mappers: about 180,000 in a bare
    process, more with the app) moved out of the garbage collector's sight (``gc.freeze``).
    Otherwise each full collection walks them all again, and a flash crowd's allocations
    trigger many (the figures are in docs/benchmarks.md). Objects created later are collected
    as usual;
    what was alive at start-up stays for the process's life, as it would anyway. Then the
    collector's thresholds are set to ``GC_THRESHOLDS``."""
    app = import_from_string(factory)()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app


def clear_metrics_folder() -> None:
    """Removes the worker processes' metric files of a previous run from
    ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's ``*.db``, the drop counters'
    ``drops-*.json``), before any worker starts: the node's sums begin again from this run."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder or not Path(folder).is_dir():
        return
    for pattern in ("*.db", "drops-*.json", "drops-*.tmp"):
        for path in Path(folder).glob(pattern):
            path.unlink(missing_ok=True)


def run(app: str, *, host: str, port: int, workers: int = 1, log_level: str = "info",
        access_log: bool = True, backlog: int = 2048, shared_socket: bool = False,
        log_config: dict[str, Any] | None = None) -> None:
    """Serve ``app`` (an import string of an app factory, e.g.
    ``dropline.web.app:create_app``) with ``workers`` processes; returns once stopped.
    ``shared_socket`` runs uvicorn's own ``--workers`` (one socket for all) anyway.
    ``log_config`` (a ``logging.config.dictConfig`` mapping, ``dropline.logs.logging_config``)
    replaces uvicorn's own and is applied in every worker process."""
    clear_metrics_folder()
    balanced = workers > 1 and not shared_socket and balanced_by_kernel()
    try:  # the port is free (for us): say so now, not once per worker
        bound_socket(host, port, reuseport=balanced).close()
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose "
                         "another port (--port) or stop what is using it") from None
    config = uvicorn.Config(functools.partial(worker_app, app), factory=True, host=host,
                            port=port, workers=workers, log_level=log_level,
                            access_log=access_log, backlog=backlog, **UVICORN_OPTIONS,
                            **({"log_config": log_config} if log_config else {}))
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:  # it said why (the port, the app)
            raise SystemExit(STARTUP_FAILURE)
        return
    if not balanced:  # what uvicorn.run does for --workers
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    log.info("Uvicorn running on http://%s:%d with %d workers, a SO_REUSEPORT socket each",
             host, port, workers)
    Multiprocess(config, sockets=[ReusePortListener(host, port)]).run()  # type: ignore[list-item]
