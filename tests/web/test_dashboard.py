"""deploy/grafana/drop-day.json: it parses as a Grafana dashboard and queries only metrics
that ``/metrics`` declares."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.web.support import scrape

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "drop-day.json"
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"],
            "gauge": [""], "summary": ["", "_sum", "_count"]}


def declared(scrape: str) -> set[str]:
    """The series names a scrape declares, each family's included even when it has no sample
    yet (the drop lane's before a purchase, a waiting room before a drop)."""
    names = set()
    for family in text_string_to_metric_families(scrape):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, [""]))
        names.update(sample.name for sample in family.samples)
    return names


def test_the_drop_day_dashboard_parses_and_has_its_panels():
    dashboard = json.loads(DASHBOARD.read_text())

    titles = [panel["title"] for panel in dashboard["panels"]]
    assert dashboard["uid"] == "dropline-drop-day"
    for wanted in ("Request p99 by route", "Paid drop purchases per second",
                   "Drop refusals per second, by reason", "Batch write time (p50, p99)",
                   "Outbox overdue", "Payments of the last 15 minutes, by outcome"):
        assert wanted in titles
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_metric_the_dashboard_queries_is_in_a_scrape(client):
    client.get("/livez")  # a request, so the latency histogram has a series
    scraped = declared(scrape(client).text)
    dashboard = json.loads(DASHBOARD.read_text())

    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bdropline_[a-z0-9_]+", target["expr"])}

    assert len(queried) >= 10
    assert queried - scraped == set()
