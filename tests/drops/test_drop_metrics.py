"""The drops' figures on ``/metrics``: the purchase counters (the lane's on PostgreSQL with
Redis, the database path's without), summed over a node's worker processes, and the waiting
rooms read from the database (either engine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dropline.clock import FrozenClock
from dropline.web.app import create_app
from dropline.web.formtoken import CSRF_COOKIE, CSRF_HEADER, form_token
from tests.drops.builders import REDIS_URL, make_drop
from tests.drops.processes import wait_for
from tests.drops.servers import serve_gated
from tests.drops.test_purchase_rules import ON_POSTGRESQL, Shop, purchase_body
from tests.web.test_request_ids import free_port

SRC = Path(__file__).resolve().parents[2] / "src"


def scrape(http: httpx.Client | TestClient) -> dict[str, dict[tuple, float]]:
    """Each sample by name, then by its labels (the worker's pid left out)."""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "worker"))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the purchase lane runs on PostgreSQL with "
                    "Redis: set DROPLINE_TEST_DATABASE_URL and DROPLINE_TEST_REDIS_URL")
def test_a_purchase_moves_the_lanes_counters(db, clock, settings):
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    with serve_gated(db, clock, settings, client) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        shop = Shop("engine", http, server.app, db, clock, client, server.prefix)
        world = shop.drop(cap=1, limit=1)
        first, second = shop.shopper(), shop.shopper()
        before = scrape(http)
        key = uuid.uuid4().hex

        paid = shop.buy(first, world, key=key)
        replay = shop.buy(first, world, key=key)
        sold_out = shop.buy(second, world)
        # The lane counts a refusal as it answers; the scrape may reach the worker first.
        wait_for(lambda: "dropline_drop_refusals_total" in scrape(http),
                 what="the sold-out refusal to be counted", seconds=10)
        after = scrape(http)
    client.close()

    assert (paid.status_code, replay.status_code, sold_out.status_code) == (201, 201, 409)
    assert before.get("dropline_drop_purchases_total", {}) == {}  # no lane before a purchase
    decisions = after["dropline_drop_gate_decisions_total"]
    assert decisions[(("outcome", "ok"),)] == 1
    assert decisions[(("outcome", "replay"),)] == 1
    assert decisions[(("outcome", "soldout"),)] == 1
    assert after["dropline_drop_refusals_total"] == {(("reason", "sold-out"),): 1}
    purchases = after["dropline_drop_purchases_total"]
    assert purchases == {(("outcome", "paid"),): 1, (("outcome", "replayed"),): 1}
    assert after["dropline_drop_batch_orders_count"][()] == 1
    assert after["dropline_drop_batch_orders_sum"][()] == 1
    assert after["dropline_drop_batch_orders_bucket"][(("le", "1.0"),)] == 1
    assert after["dropline_drop_batch_write_seconds_count"][()] == 1
    assert after["dropline_drop_batch_write_seconds_sum"][()] > 0


def test_the_waiting_room_depth_and_admissions_are_read_at_scrape_time(db, clock, settings):
    app = create_app(settings, clock=clock, db=db, run_worker=False)
    # From 127.0.0.1: /metrics answers scrapes from this machine (web.metrics).
    with TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 50000)) as http:
        shop = Shop("database", http, app, db, clock)
        world = shop.drop(queue=True, cap=5)
        ended = shop.drop(queue=True, cap=5, starts_in=-10, lasts=5, with_location=False)
        admitted, waiting, late = shop.shopper(), shop.shopper(), shop.shopper()
        empty = scrape(http)
        shop.admission(admitted, world)
        assert shop.post(waiting, f"/api/v1/drops/{world.drop_id}/queue").status_code == 200
        assert shop.post(late, f"/api/v1/drops/{ended.drop_id}/queue").status_code >= 400

        after = scrape(http)

    assert empty.get("dropline_drop_waiting_room_depth", {}) == {}
    drop = (("drop", str(world.drop_id)),)
    assert after["dropline_drop_waiting_room_depth"] == {drop: 1}
    assert after["dropline_drop_admitted_total"] == {drop: 1}


def _serve(port: int, database_url: str, folder: Path, log: Path, *, redis_url: str | None
           ) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "DROPLINE_DATABASE_URL": database_url,
           "DROPLINE_SECRET_KEY": "test-secret", "DROPLINE_RUN_SCHEDULER": "false",
           "DROPLINE_CURRENCY": "GBP", "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    env.pop("DROPLINE_REDIS_URL", None)
    env.pop("DROPLINE_DROPS_REDIS_URL", None)
    if redis_url:
        env["DROPLINE_REDIS_URL"] = redis_url
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from dropline.cli import app; app()", "serve", "--port",
             str(port), "--workers", "2", "--no-migrate"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/livez", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.skipif(not ON_POSTGRESQL, reason="several worker processes on one database need "
                    "PostgreSQL (and Redis for the lane): set DROPLINE_TEST_DATABASE_URL and "
                    "DROPLINE_TEST_REDIS_URL")
@pytest.mark.parametrize("path", ["lane", "database"])
def test_a_nodes_workers_purchases_add_up_on_metrics(db, database_url, tmp_path, path):
    """``dropline serve --workers 2``: each purchase on a new connection, so the kernel spreads
    them over both workers; a scrape, answered by either, reports the node's sum."""
    redis_client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    clock = FrozenClock(datetime.now(UTC) - timedelta(minutes=1))  # the server's real clock
    world = make_drop(db, clock, cap=20, limit=1)
    gate_keys = f"dl:d:{world.drop_id}:*"  # a server process's prefix; ids restart per test
    for key in redis_client.scan_iter(match=gate_keys):
        redis_client.delete(key)
    buyers = [Shop("x", None, None, db, clock).shopper() for _ in range(21)]
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "drops-1.json").write_text("stale, from a previous run")  # removed at start
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(port, database_url, folder, tmp_path / "serve.log",
                    redis_url=REDIS_URL if path == "lane" else None)
    try:
        wait_for(lambda: _answers(url), what="dropline serve to answer", seconds=180,
                 alive=server)
        statuses = []
        for buyer in buyers:  # one connection each (no keep-alive across them)
            statuses.append(httpx.post(
                f"{url}/api/v1/drops/{world.drop_id}/purchase", timeout=30,
                headers={"Cookie": f"dl_session={buyer.token}; {CSRF_COOKIE}=m",
                         CSRF_HEADER: form_token("test-secret", "m"),
                         "Idempotency-Key": uuid.uuid4().hex},
                json=purchase_body(world)).status_code)
        assert sorted(statuses) == [201] * 20 + [409]

        def summed() -> dict[str, dict[tuple, float]]:
            return scrape(httpx.Client(base_url=url, timeout=10))

        last: dict[str, dict[tuple, float]] = {}

        def added_up() -> bool:  # another worker's file is up to a second behind
            figures = summed()
            last.clear()
            last.update(figures)
            return (figures.get("dropline_drop_purchases_total", {}).get(
                (("outcome", "paid"),)) == 20
                and figures.get("dropline_drop_refusals_total", {}).get(
                    (("reason", "sold-out"),)) == 1)

        wait_for(added_up, what="the node's purchases to add up to 20 paid and 1 sold out",
                 seconds=30, alive=server)
        # The scrape that added up (a second scrape may reach the other worker before its
        # next file write, a second behind).
        after = dict(last)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        for key in redis_client.scan_iter(match=gate_keys):
            redis_client.delete(key)
        redis_client.close()
    # Each worker's own figures, as each wrote them last on its way out: both served some.
    own = [json.loads(p.read_text()) for p in folder.glob("drops-*.json")]

    assert after["dropline_drop_refusals_total"] == {(("reason", "sold-out"),): 1}
    assert after["dropline_drop_purchases_total"][(("outcome", "replayed"),)] == 0
    assert len(own) == 2 and all(snapshot["paid"] > 0 for snapshot in own)
    assert sum(snapshot["paid"] for snapshot in own) == 20
    if path == "lane":
        assert after["dropline_drop_gate_decisions_total"] == {
            (("outcome", "ok"),): 20, (("outcome", "soldout"),): 1}
        assert after["dropline_drop_batch_orders_sum"][()] == 20
