"""localstripe (a local Stripe API server from PyPI) as a real server for the Stripe provider's
contract tests: started on a free port per test session, waited for by polling its API, stopped
at the end. Its on-disk store (one fixed file under /tmp, rewritten on every write) is switched
off, so concurrent sessions do not share state and writes stay cheap."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SECRET_KEY = "sk_test_dropline"
PUBLISHABLE_KEY = "pk_test_dropline"
BOOT = ("import sys, localstripe.resources as r; r.Store.dump_to_disk = lambda self: None; "
        "from localstripe.server import start; sys.argv[0] = 'localstripe'; start()")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    auth = base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    request = urllib.request.Request(f"{url}/v1/balance", headers={"Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def run_localstripe(log_path: Path, *, ready_within: float = 60.0) -> Iterator[str]:
    """Yields the server's base URL once its API answers; the process is ended on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", BOOT, "--port", str(port),
                                    "--from-scratch"], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + ready_within
            while not _answers(url):
                if process.poll() is not None:
                    raise RuntimeError(f"localstripe exited ({process.returncode}); see {log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not answer within {ready_within} s")
                time.sleep(0.05)  # the readiness poll's interval, not a wait for an outcome
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
