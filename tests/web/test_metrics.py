"""``/metrics`` (Prometheus text format), ``/livez`` and ``/readyz``."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dropline.web.app import create_app
from tests.builders import make_location, make_product
from tests.web.support import scrape


def _families(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_metrics_time_requests_by_route_template_and_read_the_outboxes(client, db, clock):
    make_location(db)
    make_product(db, clock, name="Oud Noir")
    make_product(db, clock, name="Vetiver Rain")
    client.get("/products/oud-noir")
    client.get("/products/vetiver-rain")
    client.get("/no-such-page")

    scraped = scrape(client)

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=")
    families = _families(scraped.text)
    counts = {(s.labels["route"], s.labels["status_class"]): s.value
              for s in families["dropline_http_request_duration_seconds"]
              if s.name.endswith("_count")}
    assert counts[("/products/{slug}", "2xx")] == 2  # one series for every product page
    assert not any("oud-noir" in route for route, _ in counts)
    assert counts[("unmatched", "4xx")] == 1
    assert "dropline_mail_outbox_overdue_seconds" in families
    assert "dropline_webhook_deliveries" in families
    assert "dropline_payments_recent" in families


def test_metrics_from_another_machine_need_the_token(db, clock, settings):
    app = create_app(settings.model_copy(update={"web": settings.web.model_copy(
        update={"metrics_token": "scrape-secret-0123456789"})}), clock=clock, db=db,
        run_worker=False)
    with TestClient(app, client=("203.0.113.9", 5000)) as remote:
        refused = remote.get("/metrics")
        wrong = remote.get("/metrics", headers={"Authorization": "Bearer nope"})
        allowed = remote.get("/metrics",
                             headers={"Authorization": "Bearer scrape-secret-0123456789"})

    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert allowed.status_code == 200 and "dropline_payments_recent" in allowed.text


def test_overdue_mail_shows_its_age(client, db, clock):
    from dropline.notifications.models import MailOutboxItem, MailStatus

    with db.transaction() as session:
        session.add(MailOutboxItem(
            event_id="e-overdue", order_id=1, template="order_confirmation", payload={},
            status=MailStatus.pending, attempts=0,
            next_attempt_at=clock.now() - timedelta(minutes=5), created_at=clock.now()))

    families = _families(scrape(client).text)

    overdue = families["dropline_mail_outbox_overdue_seconds"][0].value
    assert overdue == 300
    pending = {s.labels["status"]: s.value for s in families["dropline_mail_outbox"]}
    assert pending["pending"] == 1


def test_liveness_and_readiness(client):
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
