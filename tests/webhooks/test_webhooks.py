"""Webhooks: queued in the event's transaction, signed, retried with backoff, never duplicated."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from sqlalchemy import func, select

from dropline.events.service import record_event
from dropline.webhooks.jobs import deliver_due
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery
from dropline.webhooks.service import backoff, create_endpoint
from dropline.webhooks.signing import sign, verify
from dropline.webhooks.targets import TargetPolicy
from tests.builders import api_token
from tests.webhooks.receiver import running_receiver

# The receiver listens on 127.0.0.1 over http: what the development settings allow.
LOCAL = TargetPolicy(allow_http=True, allow_private=True)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"webhooks": settings.webhooks.model_copy(
        update={"allow_http": True, "allow_private_targets": True})})


@pytest.fixture
def receiver():
    with running_receiver() as r:
        yield r


def _endpoint(db, clock, url, types=("*",)):
    with db.transaction() as session:
        endpoint = create_endpoint(session, clock=clock, url=url, event_types=list(types),
                                   targets=LOCAL)
        return endpoint.id, endpoint.secret


def _event(db, clock, type="order.paid", **payload):
    with db.transaction() as session:
        return record_event(session, clock=clock, type=type, subject_type="order",
                            subject_id=1, payload=payload).event_id


def _deliveries(db):
    with db.transaction() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_delivery_is_signed_so_the_receiver_can_verify_it(db, clock, receiver):
    _, secret = _endpoint(db, clock, receiver.url)
    event_id = _event(db, clock, total_amount=4200)

    with httpx.Client() as client:
        report = deliver_due(db, clock=clock, client=client, targets=LOCAL)

    assert report.delivered == 1
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == event_id
    timestamp = int(request.headers["webhook-timestamp"])
    assert verify(secret, msg_id=event_id, timestamp=timestamp, body=request.body,
                  signature_header=request.headers["webhook-signature"])
    assert not verify("whsec_wrong", msg_id=event_id, timestamp=timestamp, body=request.body,
                      signature_header=request.headers["webhook-signature"])
    assert not verify(secret, msg_id=event_id, timestamp=timestamp, body=request.body + b" ",
                      signature_header=request.headers["webhook-signature"])
    body = json.loads(request.body)
    assert body["id"] == event_id and body["type"] == "order.paid"
    assert body["data"]["total_amount"] == 4200


def test_verify_accepts_any_of_several_signatures_during_secret_rotation():
    signature = sign("secret", msg_id="msg_1", timestamp=1700000000, body=b'{"a":1}')
    assert signature.startswith("v1,")
    assert verify("secret", msg_id="msg_1", timestamp=1700000000, body=b'{"a":1}',
                  signature_header=f"v1,bogus {signature}")


def test_old_timestamps_are_rejected_by_verify():
    signature = sign("s", msg_id="m", timestamp=1000, body=b"{}")
    assert not verify("s", msg_id="m", timestamp=1000, body=b"{}", signature_header=signature,
                      now=1000 + 301)


def test_endpoint_receives_only_subscribed_event_types(db, clock, receiver):
    _endpoint(db, clock, receiver.url, types=("order.*",))
    _event(db, clock, type="order.paid")
    _event(db, clock, type="customer.registered")

    with httpx.Client() as client:
        deliver_due(db, clock=clock, client=client, targets=LOCAL)

    assert [json.loads(r.body)["type"] for r in receiver.requests] == ["order.paid"]


def test_a_rolled_back_change_queues_no_delivery(db, clock, receiver):
    _endpoint(db, clock, receiver.url)
    with pytest.raises(RuntimeError), db.transaction() as session:
        record_event(session, clock=clock, type="order.paid", subject_type="order", subject_id=1)
        raise RuntimeError("the business change failed")

    assert _deliveries(db) == []


def test_failed_delivery_is_retried_with_backoff_then_succeeds_once(db, clock, receiver):
    _endpoint(db, clock, receiver.url)
    _event(db, clock)
    receiver.statuses = [500, 503]

    with httpx.Client() as client:
        assert deliver_due(db, clock=clock, client=client, targets=LOCAL).retrying == 1
        # Not due yet: nothing is sent before the backoff has passed.
        assert deliver_due(db, clock=clock, client=client, targets=LOCAL).attempted == 0
        clock.advance(seconds=backoff(1).total_seconds())
        assert deliver_due(db, clock=clock, client=client, targets=LOCAL).retrying == 1
        clock.advance(seconds=backoff(2).total_seconds())
        assert deliver_due(db, clock=clock, client=client, targets=LOCAL).delivered == 1
        clock.advance(hours=24)
        assert deliver_due(db, clock=clock, client=client, targets=LOCAL).attempted == 0

    (delivery,) = _deliveries(db)
    assert delivery.status is DeliveryStatus.delivered and delivery.attempts == 3
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_delivery_gives_up_after_max_attempts(db, clock, receiver):
    _endpoint(db, clock, receiver.url)
    _event(db, clock)
    receiver.statuses = [500] * 10

    with httpx.Client() as client:
        for _ in range(3):
            deliver_due(db, clock=clock, client=client, targets=LOCAL, max_attempts=3)
            clock.advance(hours=7)

    (delivery,) = _deliveries(db)
    assert delivery.status is DeliveryStatus.failed and delivery.attempts == 3
    assert len(receiver.requests) == 3


def test_concurrent_dispatchers_never_send_one_event_twice(db, clock, receiver):
    _endpoint(db, clock, receiver.url)
    for _ in range(20):
        _event(db, clock)
    barrier = threading.Barrier(4)

    def dispatch():
        barrier.wait()
        with httpx.Client() as client:
            deliver_due(db, clock=clock, client=client, targets=LOCAL)

    threads = [threading.Thread(target=dispatch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert all(d.status is DeliveryStatus.delivered for d in _deliveries(db))


def test_a_crashed_senders_claim_expires_and_the_delivery_is_retried(db, clock, receiver):
    _endpoint(db, clock, receiver.url)
    _event(db, clock)
    from dropline.webhooks.jobs import _claim_due

    assert len(_claim_due(db, clock=clock, limit=10)) == 1  # claimed, then the sender "dies"
    with httpx.Client() as client:
        # The lease is still held:
        assert deliver_due(db, clock=clock, client=client, targets=LOCAL).attempted == 0
        clock.advance(minutes=2)
        assert deliver_due(db, clock=clock, client=client, targets=LOCAL).delivered == 1


def test_webhook_api_registers_endpoint_and_lists_deliveries(client, db, clock, receiver):
    headers = api_token(db, clock, "webhooks:manage")
    created = client.post("/api/v1/admin/webhooks",
                          json={"url": receiver.url, "event_types": ["order.paid"]},
                          headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["secret"].startswith("whsec_")
    _event(db, clock)

    listed = client.get(f"/api/v1/admin/webhooks/{created.json()['id']}/deliveries",
                        headers=headers)

    assert listed.status_code == 200
    assert [d["status"] for d in listed.json()] == ["pending"]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_checkout_event_is_delivered_after_commit_by_the_request_hook(db, clock, settings,
                                                                      receiver):
    from fastapi.testclient import TestClient

    from dropline.web.app import create_app
    from tests.builders import cart_with, checkout_body, make_location, make_product, sign_up

    make_location(db)
    _, variant = make_product(db, clock)
    _endpoint(db, clock, receiver.url, types=("order.paid",))
    app = create_app(settings, clock=clock, db=db, run_worker=False)
    worker = app.state.worker
    with httpx.Client() as http, TestClient(app) as client:
        app.state.services.after_commit.append(lambda: worker.run_once(http))
        sign_up(client)
        response = client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant)),
                               headers={"Idempotency-Key": "hook-1"})
        assert response.status_code == 201

    assert [json.loads(r.body)["data"]["order_id"] for r in receiver.requests] == [
        response.json()["id"]]


def test_worker_pass_purges_completed_idempotency_records_after_retention(client, db, clock,
                                                                          settings):
    from dropline.bootstrap import build_services
    from dropline.idempotency.models import IdempotencyRecord
    from dropline.web.scheduler import BackgroundWorker
    from tests.builders import cart_with, checkout_body, make_location, make_product, sign_up

    make_location(db)
    _, variant = make_product(db, clock)
    sign_up(client)
    assert client.post("/api/v1/checkout", json=checkout_body(cart_with(client, variant)),
                       headers={"Idempotency-Key": "keep-me"}).status_code == 201
    worker = BackgroundWorker(build_services(settings, clock=clock, db=db))

    def records():
        with db.transaction() as session:
            return session.scalar(select(func.count()).select_from(IdempotencyRecord))

    with httpx.Client() as http:
        worker.run_once(http)
        assert records() == 1  # still inside the retention window
        clock.advance(hours=settings.idempotency.retention_hours + 1)
        worker.run_once(http)
    assert records() == 0
