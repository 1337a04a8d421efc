"""``dropline.web.serving``: several workers, a SO_REUSEPORT socket each, run for real.

The server is started as ``dropline serve --workers 2`` starts it (uvicorn's supervisor with
spawned worker processes), with a tiny app that answers its worker's pid; the tests open real
TCP connections, one per request, and read which worker took each.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropline.web import serving

pytestmark = pytest.mark.skipif(not serving.balanced_by_kernel(),
                                reason="SO_REUSEPORT balancing is Linux's")

SRC = Path(__file__).resolve().parents[2] / "src"
PID_APP = '''
import os

def create():
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = str(os.getpid()).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return app
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_pid(port: int) -> int | None:
    """The pid of the worker that served one request on a new connection (None if refused)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        return int(connection.getresponse().read())
    except OSError:
        return None
    finally:
        connection.close()


def pids_seen(port: int, requests: int) -> list[int]:
    return [pid for pid in (worker_pid(port) for _ in range(requests)) if pid is not None]


@pytest.fixture()
def served(tmp_path: Path):
    (tmp_path / "pid_app.py").write_text(PID_APP)
    port = free_port()
    code = (f"from dropline.web.serving import run; run('pid_app:create', host='127.0.0.1', "
            f"port={port}, workers=2, log_level='warning')")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{SRC}"}
    server = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(set(pids_seen(port, 8))) < 2:  # both workers up
        assert server.poll() is None, "the server exited during start-up"
        assert time.monotonic() < deadline, "two workers did not start within 60 s"
        time.sleep(0.2)
    yield server, port
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def test_the_kernel_spreads_new_connections_over_both_workers(served) -> None:
    server, port = served
    pids = pids_seen(port, 200)
    assert len(pids) == 200
    counts = {pid: pids.count(pid) for pid in set(pids)}
    assert len(counts) == 2
    # A hash of each connection's address and port: about half each (below 60 of 200 has a
    # probability under 1e-8 when fair). A shared socket gives whichever loop is idle first.
    assert min(counts.values()) >= 60, counts
    assert server.pid not in counts  # the supervisor serves nothing itself


def test_a_dead_worker_is_replaced_with_a_socket_of_its_own(served) -> None:
    server, port = served
    first = set(pids_seen(port, 20))
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now_serving = set(pids_seen(port, 20))
        if len(now_serving) == 2 and victim not in now_serving:
            break
        assert time.monotonic() < deadline, f"still {now_serving} after the kill of {victim}"
        time.sleep(0.2)
    assert server.poll() is None
    assert len(pids_seen(port, 40)) == 40  # nothing refused once replaced


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_is_a_clear_error_before_any_worker_starts(workers: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            serving.run("dropline.web.app:create_app", host="127.0.0.1", port=port,
                        workers=workers)


def tiny_app_factory() -> object:
    return {"built": True}  # stands for an ASGI app; worker_app only calls the factory


def test_a_worker_builds_its_app_then_freezes_what_is_alive_out_of_the_collectors_sight() -> None:
    import gc

    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    try:
        app = serving.worker_app("tests.web.test_serving:tiny_app_factory")
        assert app == {"built": True}
        assert gc.get_freeze_count() > 10_000  # modules, classes, functions: all frozen
        assert gc.get_threshold() == serving.GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
