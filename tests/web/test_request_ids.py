"""Request ids and JSON logs: ``dropline serve`` run for real with ``DROPLINE_LOG_FORMAT=json``;
each request's id is in its response header and in the log line written while serving it. The
answers given before the middleware stack (the CSRF guard's refusals, the drop lane's answers)
carry one too."""

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
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from dropline.logs import JsonFormatter, request_id
from dropline.web.request_ids import sane_request_id
from tests.drops.builders import REDIS_URL
from tests.drops.servers import serve_gated
from tests.drops.test_purchase_rules import ON_POSTGRESQL, Shop, purchase_body

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


def test_the_csrf_guards_refusals_carry_the_request_id(client):
    followed = client.post("/cart/lines", data={"variant_id": "1"},
                           headers={"Origin": "https://evil.example", "X-Request-Id": "lb-7"})
    fresh = client.post("/cart/lines", data={"variant_id": "1"},
                        headers={"Origin": "https://evil.example"})

    assert followed.status_code == 403 and followed.headers["X-Request-Id"] == "lb-7"
    assert fresh.status_code == 403
    made = fresh.headers["X-Request-Id"]
    assert made != "lb-7" and sane_request_id(made) == made


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the drop lane runs on PostgreSQL with Redis: "
                    "set DROPLINE_TEST_DATABASE_URL and DROPLINE_TEST_REDIS_URL")
def test_the_drop_lanes_answers_carry_the_request_id(db, clock, settings):
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    with serve_gated(db, clock, settings, client) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        shop = Shop("engine", http, server.app, db, clock, client, server.prefix)
        world = shop.drop(cap=1, limit=1)
        first, second = shop.shopper(), shop.shopper()
        paid = shop.post(first, f"/api/v1/drops/{world.drop_id}/purchase",
                         headers={"Idempotency-Key": uuid.uuid4().hex, "X-Request-Id": "lb-1"},
                         json=purchase_body(world))
        sold_out = shop.buy(second, world)
        refused = shop.post(second, f"/api/v1/drops/{world.drop_id}/purchase",
                            headers={"Idempotency-Key": uuid.uuid4().hex,
                                     "Origin": "https://evil.example"},
                            json=purchase_body(world))
    client.close()

    assert (paid.status_code, sold_out.status_code, refused.status_code) == (201, 409, 403)
    assert paid.headers["X-Request-Id"] == "lb-1"  # the balancer's id, followed
    ids = [sold_out.headers["X-Request-Id"], refused.headers["X-Request-Id"]]
    assert all(sane_request_id(made) == made for made in ids) and len(set(ids)) == 2
