"""No SSRF through webhooks: a target on this machine or a private network is refused when it is
registered (422 problem+json saying why) and again right before each delivery, where the
request goes to the address that was checked, so a name re-pointed at an internal address
(DNS rebinding) is refused too and the deliveries list never says which internal ports answer."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from sqlalchemy import select

from dropline.events.service import record_event
from dropline.webhooks.jobs import deliver_due
from dropline.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from dropline.webhooks.service import create_endpoint
from dropline.webhooks.targets import (
    TargetPolicy,
    UnsafeTarget,
    check_new_target,
    is_public_address,
)
from tests.builders import api_token
from tests.web.support import assert_problem
from tests.webhooks.receiver import running_receiver

INTERNAL_URLS = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]:22/",
    "https://[::ffff:127.0.0.1]/hook",   # IPv4-mapped IPv6
    "https://localhost/hook",            # a name resolving to loopback
    "https://0.0.0.0/hook",
    "https://192.168.1.1:6379/",
    "https://[fe80::1]/hook",
]


def resolving(mapping: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError("no such host")
        return mapping[host]
    return resolve


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_internal_target_is_refused_at_registration(url):
    with pytest.raises(UnsafeTarget, match="internal address"):
        check_new_target(url)


def test_a_name_is_refused_when_any_of_its_addresses_is_internal():
    policy = TargetPolicy(resolve=resolving({"hooks.example": ["93.184.216.34", "10.1.2.3"]}))
    with pytest.raises(UnsafeTarget, match="10.1.2.3"):
        check_new_target("https://hooks.example/in", policy)


def test_a_public_https_target_is_accepted():
    policy = TargetPolicy(resolve=resolving({"hooks.example": ["93.184.216.34"]}))
    assert check_new_target("https://hooks.example/in", policy).address == "93.184.216.34"


@pytest.mark.parametrize("url, reason", [
    ("http://93.184.216.34/in", "https"),
    ("ftp://93.184.216.34/in", "http"),
    ("https://user:pw@93.184.216.34/in", "credentials"),
    ("https:///in", "absolute"),
])
def test_plain_http_and_odd_urls_are_refused_by_default(url, reason):
    with pytest.raises(UnsafeTarget, match=reason):
        check_new_target(url)


def test_the_development_settings_allow_a_local_http_receiver():
    local = TargetPolicy(allow_http=True, allow_private=True)
    assert check_new_target("http://127.0.0.1:8025/hook", local).address == "127.0.0.1"


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.2", False), ("10.0.0.1", False), ("172.16.0.1", False), ("192.168.0.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.1", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("198.18.0.1", False), ("192.0.2.1", False),
    ("::1", False), ("::", False), ("fc00::1", False), ("fe80::1", False), ("ff02::1", False),
    ("::ffff:10.0.0.1", False), ("::ffff:8.8.8.8", True),
    ("2002:7f00:1::1", False),       # 6to4 carrying 127.0.0.1
    ("64:ff9b::a00:1", False),       # NAT64 carrying 10.0.0.1
])
def test_address_classes(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("url", INTERNAL_URLS[:6])
def test_the_api_refuses_an_internal_target_with_a_clear_problem(client, db, clock, url):
    headers = api_token(db, clock, "webhooks:manage")

    response = client.post("/api/v1/admin/webhooks", headers=headers,
                           json={"url": url, "event_types": ["order.paid"]})

    problem = assert_problem(response, 422)
    assert problem["type"].endswith("/unsafe-webhook-target")
    assert "internal address" in problem["detail"]
    with db.transaction() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []


def test_the_api_refuses_plain_http_by_default(client, db, clock):
    headers = api_token(db, clock, "webhooks:manage")

    response = client.post("/api/v1/admin/webhooks", headers=headers,
                           json={"url": "http://93.184.216.34/hook"})

    assert "https" in assert_problem(response, 422)["detail"]


def _register(db, clock, url, policy):
    with db.transaction() as session:
        return create_endpoint(session, clock=clock, url=url, event_types=["*"],
                               targets=policy).id


def _event(db, clock):
    with db.transaction() as session:
        record_event(session, clock=clock, type="order.paid", subject_type="order", subject_id=1)


def _deliveries(db):
    with db.transaction() as session:
        return {d.endpoint_id: d for d in session.scalars(select(WebhookDelivery))}


def test_a_name_rebound_to_loopback_after_registration_is_refused_at_delivery(db, clock):
    with running_receiver() as receiver:
        port = httpx.URL(receiver.url).port
        url = f"http://hooks.example:{port}/hook"
        endpoint_id = _register(db, clock, url, TargetPolicy(
            allow_http=True, resolve=resolving({"hooks.example": ["93.184.216.34"]})))
        _event(db, clock)
        rebound = TargetPolicy(allow_http=True,
                               resolve=resolving({"hooks.example": ["127.0.0.1"]}))

        with httpx.Client() as http:
            report = deliver_due(db, clock=clock, client=http, targets=rebound)

        assert receiver.requests == []
    assert report.failed == 1
    delivery = _deliveries(db)[endpoint_id]
    assert delivery.status is DeliveryStatus.failed and delivery.last_status_code is None
    assert delivery.last_error.startswith("refused: ") and "127.0.0.1" in delivery.last_error


def test_deliveries_do_not_reveal_which_internal_ports_answer(db, clock):
    with running_receiver() as receiver:
        open_port = httpx.URL(receiver.url).port
        local = TargetPolicy(allow_http=True, allow_private=True)
        # Registered while the development setting was on; delivered with it off.
        answering = _register(db, clock, f"http://127.0.0.1:{open_port}/", local)
        closed = _register(db, clock, "http://127.0.0.1:9/", local)
        _event(db, clock)

        with httpx.Client() as http:
            deliver_due(db, clock=clock, client=http, targets=TargetPolicy(allow_http=True))

        assert receiver.requests == []
    deliveries = _deliveries(db)
    assert deliveries[answering].last_error == deliveries[closed].last_error
    assert deliveries[answering].last_status_code is deliveries[closed].last_status_code is None


def test_a_delivery_connects_to_the_checked_address_and_names_the_host(db, clock):
    with running_receiver() as receiver:
        port = httpx.URL(receiver.url).port
        local = TargetPolicy(allow_http=True, allow_private=True,
                             resolve=resolving({"hooks.example": ["127.0.0.1"]}))
        _register(db, clock, f"http://hooks.example:{port}/hook", local)
        _event(db, clock)

        with httpx.Client() as http:
            assert deliver_due(db, clock=clock, client=http, targets=local).delivered == 1

        (request,) = receiver.requests
    assert request.headers["host"] == f"hooks.example:{port}"


def test_an_unresolvable_host_is_retried_not_given_up(db, clock):
    policy = TargetPolicy(resolve=resolving({}))
    endpoint_id = _register(db, clock, "https://not-yet.example/hook", policy)
    _event(db, clock)

    with httpx.Client() as http:
        assert deliver_due(db, clock=clock, client=http, targets=policy).retrying == 1

    delivery = _deliveries(db)[endpoint_id]
    assert delivery.status is DeliveryStatus.pending
    assert "does not resolve" in delivery.last_error
