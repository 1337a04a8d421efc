"""Every answer carries the security headers (web.security_headers): a page, an API answer and
an error alike; no page can be framed; HSTS only when the site is served over HTTPS; the API
docs load nothing from a CDN; and no template holds an inline script the policy would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import dropline
from dropline.web.app import create_app
from tests.builders import sign_up
from tests.memberships.support import make_tier
from tests.web.support import assert_problem, browser_session

SRC = Path(dropline.__file__).parent


def assert_security_headers(response) -> dict[str, str]:
    headers = response.headers
    policy = dict(part.strip().split(" ", 1) for part in
                  headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    return policy


@pytest.mark.parametrize("path", ["/", "/api/v1/products", "/healthz", "/static/shop.css"])
def test_pages_api_answers_and_files_carry_the_headers(client, path):
    response = client.get(path)

    assert response.status_code == 200, response.text
    assert_security_headers(response)
    assert "strict-transport-security" not in response.headers  # plain http in development


@pytest.mark.parametrize("path, status", [("/api/v1/admin/orders", 401), ("/nowhere", 404),
                                          ("/api/v1/products?limit=-1", 422)])
def test_error_answers_carry_the_headers(client, path, status):
    response = client.get(path)

    assert_problem(response, status)
    assert_security_headers(response)


def test_the_console_sign_in_refuses_to_be_framed(client):
    response = client.get("/admin/login")

    assert response.status_code == 200
    policy = assert_security_headers(response)
    assert policy["frame-ancestors"] == "'none'" and response.headers["x-frame-options"] == "DENY"


def test_hsts_is_sent_when_the_site_is_served_over_https(db, clock, settings):
    secure = settings.model_copy(
        update={"web": settings.web.model_copy(update={"cookie_secure": True})})
    app = create_app(secure, clock=clock, db=db, run_worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/")

    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_load_only_from_this_server(client, path):
    page = client.get(path)

    assert page.status_code == 200
    assert_security_headers(page)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(url.startswith("/") for url in assets), assets
    assert all(re.search(r"\bsrc=", tag) for tag in re.findall(r"<script[^>]*>", page.text))
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0


EXECUTABLE_INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def test_no_template_holds_an_inline_script_or_an_event_handler_attribute():
    offenders = []
    for template in SRC.rglob("*.html"):
        text = template.read_text()
        if EXECUTABLE_INLINE.search(text) or EVENT_HANDLER.search(text):
            offenders.append(str(template.relative_to(SRC)))

    assert offenders == []


@pytest.mark.parametrize("method, path, allow", [
    ("PUT", "/api/v1/admin/tokens", "GET, POST"),  # two routes share the path
    ("PATCH", "/api/v1/admin/webhooks", "GET, POST"),
    ("PUT", "/api/v1/admin/tokens/5", "DELETE"),
])
def test_a_405_lists_every_method_the_path_serves(client, method, path, allow):
    response = client.request(method, path)

    assert_problem(response, 405)
    assert response.headers["allow"] == allow


def test_only_the_pages_taking_a_card_allow_stripe_js_and_only_what_it_needs(
        db, clock, settings):
    on_stripe = settings.model_copy(update={"payments": settings.payments.model_copy(update={
        "provider": "stripe", "stripe_secret_key": "sk_test_x",
        "stripe_publishable_key": "pk_test_x"})})
    make_tier(db, clock, slug="friends", price=900)
    app = create_app(on_stripe, clock=clock, db=db, run_worker=False)
    with TestClient(app) as client:
        sign_up(browser_session(client))
        card_page = client.get("/membership")  # its join form takes a card
        home = client.get("/")

    policy = assert_security_headers(home)
    assert "stripe" not in home.headers["content-security-policy"]
    assert '<script src="https://js.stripe.com/v3/">' not in home.text
    policy = dict(part.strip().split(" ", 1) for part in
                  card_page.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self' https://*.js.stripe.com https://js.stripe.com"
    assert policy["connect-src"] == "'self' https://api.stripe.com"
    assert policy["frame-src"] == ("'self' https://*.js.stripe.com https://hooks.stripe.com "
                                   "https://js.stripe.com")
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert '<script src="https://js.stripe.com/v3/"></script>' in card_page.text
    assert 'data-publishable-key="pk_test_x"' in card_page.text
