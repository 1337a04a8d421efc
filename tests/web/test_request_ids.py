"""Request ids and JSON logs: ``dropline serve`` run for real with ``DROPLINE_LOG_FORMAT=json``;
each request's id is in its response header and in the log line written while serving it."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropline.logs import JsonFormatter, request_id
from dropline.web.request_ids import sane_request_id

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Connection": "close", **headers})
        response = connection.getresponse()
        response.read()
        return response
    except OSError:
        return None
    finally:
        connection.close()


@pytest.fixture()
def served(tmp_path: Path):
    """``dropline serve`` on a free port, on a fresh SQLite file, logging JSON to a file."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(SRC), "DROPLINE_LOG_FORMAT": "json",
           "DROPLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
           "DROPLINE_RUN_SCHEDULER": "false"}
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-c", "from dropline.cli import app; app()", "serve",
             "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log_file, stderr=log_file, start_new_session=True)
    deadline = time.monotonic() + 60
    while get(port, "/livez", {}) is None:
        assert server.poll() is None, f"serve exited: {log_path.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "serve did not answer within 60 s"
        time.sleep(0.2)
    yield port, log_path
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.startswith("{")]


def lines_for(path: Path, needle: str, *, expected: int = 1) -> list[dict]:
    """The JSON log lines whose message contains ``needle``, once ``expected`` are written
    (the access line is flushed as the response starts, so a little after the client reads)."""
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in json_lines(path) if needle in line["message"]]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_requests_id_is_in_its_response_header_and_its_log_line(served):
    port, log_path = served

    response = get(port, "/livez?who=first", {"X-Request-Id": "edge-1a2b.3c_4"})

    assert response is not None and response.status == 200
    assert response.headers["X-Request-Id"] == "edge-1a2b.3c_4"
    [line] = lines_for(log_path, "/livez?who=first")
    assert line["request_id"] == "edge-1a2b.3c_4"
    assert line["level"] == "INFO" and line["logger"] == "uvicorn.access"
    assert line["time"].endswith("+00:00")


def test_a_hostile_request_id_is_replaced_and_never_logged(served):
    port, log_path = served
    hostile = 'x" ,"level":"CRITICAL' + "a" * 80

    response = get(port, "/livez?who=hostile", {"X-Request-Id": hostile})
    fresh = get(port, "/livez?who=unnamed", {})

    assert response is not None and fresh is not None
    given = response.headers["X-Request-Id"]
    assert given != hostile and sane_request_id(given) == given
    [line] = lines_for(log_path, "/livez?who=hostile")
    assert line["request_id"] == given and line["level"] == "INFO"
    assert hostile not in log_path.read_text()
    made = fresh.headers["X-Request-Id"]
    assert made not in (given, None)
    assert lines_for(log_path, "/livez?who=unnamed")[0]["request_id"] == made


@pytest.mark.parametrize("given", ["", "a" * 65, "two words", "semi;colon", "é", "a\tb"])
def test_insane_ids_are_replaced(given):
    made = sane_request_id(given)

    assert made != given and len(made) <= 64


def test_json_lines_carry_the_extras_and_the_current_request_id():
    record = logging.LogRecord("dropline.drops", logging.WARNING, __file__, 1,
                               "drop %d refused %s", (7, "soldout"), None)
    record.drop_id = 7
    record.amount = object()  # not JSON: written as its str
    token = request_id.set("r-42")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)

    assert line["message"] == "drop 7 refused soldout"
    assert line["request_id"] == "r-42" and line["drop_id"] == 7
    assert line["logger"] == "dropline.drops" and line["level"] == "WARNING"
    assert line["amount"].startswith("<object object")
