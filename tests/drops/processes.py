"""A real server process for the crash tests: ``dropline serve``'s code path (one worker) in a
child process on the test database and Redis, with its settings from the environment as in
production, so that a test can kill it with SIGKILL at a failpoint (``dropline.failpoints``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.drops.builders import REDIS_URL

SRC = Path(__file__).resolve().parents[2] / "src"
PREFIX = "dl:"  # the gate's default prefix: what a server process uses


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str

    def kill(self) -> None:
        """SIGKILL: no clean-up runs, as when the machine or the OOM killer takes a worker."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server_process(database_url: str, **environment: str) -> Iterator[ServerProcess]:
    """A server process on ``database_url`` and the test Redis; ``environment`` adds
    DROPLINE_* variables (a failpoint, a lease)."""
    port = _free_port()
    code = ("from dropline.web.serving import run; run('dropline.web.app:create_app', "
            f"host='127.0.0.1', port={port}, workers=1, log_level='warning', "
            "access_log=False)")
    env = {**os.environ, "PYTHONPATH": str(SRC), "DROPLINE_DATABASE_URL": database_url,
           "DROPLINE_REDIS_URL": REDIS_URL, "DROPLINE_SECRET_KEY": "test-secret",
           "DROPLINE_RUN_SCHEDULER": "false", "DROPLINE_CURRENCY": "GBP",
           "DROPLINE_FLAT_SHIPPING_AMOUNT": "395", "DROPLINE_FREE_SHIPPING_THRESHOLD": "5000",
           **environment}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    server = ServerProcess(process, f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: _answers(server.url), what="the server process to answer",
                 alive=process)
        yield server
    finally:
        if process.poll() is None:
            server.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition: Callable[[], bool], *, what: str, seconds: float = 60,
             alive: subprocess.Popen[bytes] | None = None) -> None:
    """Polls ``condition`` until it holds; fails after ``seconds`` or if ``alive`` exits."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert alive is None or alive.poll() is None, f"the process exited waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
