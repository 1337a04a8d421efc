"""CSRF (issue 20): forms carry a synchronizer token; unsafe cookie-authenticated requests from
another origin, and cookie-authenticated non-JSON API calls, are refused; sign-in too.

These tests use bare clients (no token sent by default, unlike the ``client`` fixture)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from dropline.clock import Clock
from dropline.db import Database
from tests.builders import PASSWORD, api_token, make_location, make_product, sign_up
from dropline.web.csrf import _headers, _is_bearer
from tests.web.support import assert_problem, changed_tables, snapshot
from tests.web.test_security_headers import assert_security_headers

HOSTILE = "https://evil.example"
SIBLING = "https://shop-attacker.testserver"  # a sibling origin of the same site
SELF = "http://testserver"


def bare(client: TestClient) -> TestClient:
    """A browser with its own cookie jar that has not yet been shown a form."""
    return TestClient(client.app, raise_server_exceptions=False)


def token_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the form carries no token"
    return found.group(1)


def test_every_post_form_renders_the_token_field(client: TestClient) -> None:
    browser = bare(client)
    for path in ("/sign-in", "/sign-up", "/membership/sign-in", "/admin/login"):
        page = browser.get(path)
        assert page.status_code == 200, path
        token_from(page.text)
    assert "dl_csrf" in browser.cookies


def test_a_same_origin_form_with_its_token_is_accepted(client: TestClient) -> None:
    browser = bare(client)
    sign_up(browser, email="owner@example.com")
    token = token_from(browser.get("/sign-in").text)
    response = browser.post("/sign-in", data={"email": "owner@example.com",
                                              "password": PASSWORD, "csrf_token": token},
                            headers={"Origin": SELF, "Sec-Fetch-Site": "same-origin"},
                            follow_redirects=False)
    assert response.status_code == 303


def test_a_form_without_the_token_is_refused_with_a_page(client: TestClient) -> None:
    browser = bare(client)
    sign_up(browser, email="no-token@example.com")
    browser.get("/sign-in")  # the browser has its cookie, but the post leaves the field out
    response = browser.post("/sign-in", data={"email": "no-token@example.com",
                                              "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "did not come from this site" in response.text


def test_a_token_of_another_browser_is_refused(client: TestClient) -> None:
    mine, theirs = bare(client), bare(client)
    their_token = token_from(theirs.get("/sign-in").text)
    mine.get("/sign-in")
    response = mine.post("/sign-in", data={"email": "x@example.com", "password": "p",
                                           "csrf_token": their_token})
    assert response.status_code == 403


def test_a_cross_origin_form_post_is_refused_and_changes_nothing(
        client: TestClient, db: Database, clock: Clock) -> None:
    make_location(db)
    _, variant_id = make_product(db, clock)
    browser = bare(client)
    sign_up(browser)
    before = snapshot(db)
    # Even with a valid token (say, read by a sibling origin), another origin is refused.
    token = token_from(browser.get("/account").text)
    for origin in (HOSTILE, SIBLING):
        response = browser.post("/cart/lines", data={"variant_id": str(variant_id),
                                                     "csrf_token": token},
                                headers={"Origin": origin}, follow_redirects=False)
        assert response.status_code == 403
        assert "another site" in response.text
    response = browser.post("/sign-out", data={"csrf_token": token},
                            headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert response.status_code == 403
    assert browser.get("/api/v1/me").status_code == 200  # still signed in
    assert changed_tables(before, snapshot(db)) == []


def test_a_cross_origin_json_call_is_refused_with_a_problem(client: TestClient) -> None:
    browser = bare(client)
    sign_up(browser)
    response = browser.post("/api/v1/memberships/current/keep", json={},
                            headers={"Origin": HOSTILE})
    assert_problem(response, 403)


def test_a_text_plain_post_with_the_session_cookie_is_refused(client: TestClient) -> None:
    browser = bare(client)
    sign_up(browser)
    response = browser.post("/api/v1/memberships/current/keep", content=b"{}",
                            headers={"Content-Type": "text/plain"})
    assert_problem(response, 415)
    response = browser.post("/api/v1/carts", content=b'{"currency":"GBP"}',
                            headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert_problem(response, 415)


def test_a_multipart_upload_with_the_session_cookie_meets_the_form_token_not_a_415(
        client: TestClient) -> None:
    """Multipart is the media uploads' documented type: with a shopper's cookie it is a form
    post without its token (403), and a method the path does not have is still a 405."""
    browser = bare(client)
    sign_up(browser)
    upload = {"file": ("a.png", b"\x89PNG", "image/png")}
    posted = browser.post("/api/v1/admin/media/product/1", files=upload)
    assert_problem(posted, 403)
    put = browser.put("/api/v1/admin/media/product/1", files=upload)
    assert_problem(put, 405)


def test_sign_in_with_a_hostile_origin_is_refused(client: TestClient) -> None:
    browser = bare(client)
    sign_up(bare(client), email="victim@example.com")
    response = browser.post("/api/v1/sessions", json={"email": "victim@example.com",
                                                      "password": PASSWORD},
                            headers={"Origin": HOSTILE})
    assert_problem(response, 403)
    for path in ("/sign-in", "/membership/sign-in", "/admin/login"):
        token = token_from(browser.get(path).text)
        response = browser.post(path, data={"email": "victim@example.com",
                                            "password": PASSWORD, "csrf_token": token},
                                headers={"Origin": HOSTILE}, follow_redirects=False)
        assert response.status_code == 403, path
    assert "dl_session" not in browser.cookies


def test_bearer_token_calls_are_not_cookie_authenticated_and_pass(
        client: TestClient, db: Database, clock: Clock) -> None:
    headers = {**api_token(db, clock, "customers:read"), "Origin": HOSTILE,
               "Content-Type": "text/plain"}
    response = bare(client).request("POST", "/api/v1/admin/customers", headers=headers)
    assert response.status_code == 405  # routed (GET only), not refused by the guard
    response = bare(client).get("/api/v1/admin/customers", headers=headers)
    assert response.status_code == 200


def test_a_cached_pages_form_needs_a_same_origin_browser(
        client: TestClient, db: Database, clock: Clock) -> None:
    make_location(db)
    _, variant_id = make_product(db, clock)
    browser = bare(client)
    sign_up(browser)
    refused = browser.post("/cart/lines", data={"variant_id": str(variant_id)},
                           follow_redirects=False)
    assert refused.status_code == 403
    accepted = browser.post("/cart/lines", data={"variant_id": str(variant_id)},
                            headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert accepted.status_code == 303


def test_behind_a_proxy_the_forwarded_host_is_the_sites_own(client: TestClient) -> None:
    browser = bare(client)
    sign_up(browser, email="proxied@example.com")
    token = token_from(browser.get("/sign-in").text)
    response = browser.post("/sign-in", data={"email": "proxied@example.com",
                                              "password": PASSWORD, "csrf_token": token},
                            headers={"Origin": "https://shop.example",
                                     "X-Forwarded-Host": "shop.example"},
                            follow_redirects=False)
    assert response.status_code == 303


def test_the_guards_refusals_carry_the_security_headers(client: TestClient) -> None:
    browser = bare(client)
    sign_up(browser)
    api = browser.post("/api/v1/memberships/current/keep", json={}, headers={"Origin": HOSTILE})
    form = browser.post("/sign-out", data={}, headers={"Origin": HOSTILE},
                        follow_redirects=False)
    plain = browser.post("/api/v1/carts", content=b"{}", headers={"Content-Type": "text/plain"})
    assert_problem(api, 403)
    assert form.status_code == 403 and "another site" in form.text
    assert_problem(plain, 415)
    for response in (api, form, plain):
        assert_security_headers(response)


# Header sets the guard's one-pass shortcut must decide exactly as its full checks do.
GUARD_CASES = [
    [(b"content-type", b"application/json")],
    [(b"content-type", b"application/json"), (b"origin", HOSTILE.encode())],
    [(b"content-type", b"application/json"), (b"origin", SELF.encode())],
    [(b"content-type", b"application/json"), (b"origin", b"null")],
    [(b"content-type", b"application/json"), (b"sec-fetch-site", b"cross-site")],
    [(b"content-type", b"application/json"), (b"sec-fetch-site", b"same-origin")],
    [(b"content-type", b"application/json"), (b"referer", f"{HOSTILE}/page".encode())],
    [(b"Content-Type", b"application/json"), (b"Origin", HOSTILE.encode())],
    [(b"content-type", b"Application/JSON")],
    [(b"content-type", b"application/json; charset=utf-8")],
    [(b"content-type", b"text/plain")],
    [(b"content-type", b"text/plain"), (b"content-type", b"application/json")],
    [(b"content-type", b"application/json"), (b"content-type", b"text/plain")],
    [(b"content-length", b"2")],
    [],
    [(b"authorization", b"Bearer dl_x"), (b"origin", HOSTILE.encode())],
    [(b"authorization", b"bearer dl_x"), (b"content-type", b"text/plain")],
    [(b"authorization", b"Bearer dl_x"), (b"authorization", b"Basic eA==")],
    [(b"authorization", b"Basic eA=="), (b"authorization", b"Bearer dl_x"),
     (b"origin", HOSTILE.encode())],
    [(b"authorization", b"Basic eA=="), (b"content-type", b"application/json")],
]


def test_the_guards_shortcut_decides_as_its_full_checks(client: TestClient) -> None:
    guard = client.app.csrf_guard
    for path in ("/api/v1/drops/1/purchase", "/cart/lines"):
        for case in GUARD_CASES:
            headers = [(b"host", b"testserver"), (b"cookie", b"dl_session=abc"), *case]
            scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
            decoded = _headers(scope)
            full = None if _is_bearer(decoded) else guard._check(path, decoded)
            quick = guard.refusal_for(scope)
            assert (quick is None) == (full is None), (path, case)
            if quick is not None:
                assert quick.status_code == full.status_code, (path, case)
