"""The drops' figures on ``/metrics``: the purchase lane's counters (PostgreSQL with Redis) and
the waiting rooms read from the database (either engine)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dropline.web.app import create_app
from tests.drops.builders import REDIS_URL
from tests.drops.servers import serve_gated
from tests.drops.test_purchase_rules import ON_POSTGRESQL, Shop


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
