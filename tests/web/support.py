"""Helpers shared by the web tests: what a refusal must look like, and what "nothing changed"
means (every row of every table, compared before and after)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from dropline.db import Database
from dropline.models import metadata
from dropline.web.formtoken import CSRF_COOKIE, CSRF_HEADER, form_token

PROBLEM_JSON = "application/problem+json"

Snapshot = dict[str, list[tuple[Any, ...]]]


def scrape(client: TestClient) -> Response:
    """``GET /metrics`` as a scraper on the machine itself sends it (from 127.0.0.1; the test
    client's own address, "testclient", is refused like any other remote one)."""
    return TestClient(client.app, client=("127.0.0.1", 50000)).get("/metrics")


def assert_problem(response: Response, status: int | None = None) -> dict[str, Any]:
    """A refusal is RFC 9457 problem+json carrying type, title, status and detail. With no
    ``status`` any 4xx will do; a 5xx never does."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if status is None:
        assert 400 <= response.status_code < 500, response.text[:500]
    else:
        assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers["content-type"]
    problem = response.json()
    assert problem["status"] == response.status_code
    for member in ("type", "title", "detail"):
        assert isinstance(problem[member], str) and problem[member], (member, problem)
    return problem


# A session's last use is the sign-in's own bookkeeping (its idle expiry slides, at most once
# a minute, on any request it authenticates, refused ones included), not the shop's state.
BOOKKEEPING = frozenset({("customer_sessions", "last_seen_at"), ("admin_sessions", "last_seen_at")})


def snapshot(db: Database) -> Snapshot:
    """Every row of every table, in primary-key order: stricter than row counts, stock levels
    or amount sums, which it contains. Only ``BOOKKEEPING`` columns are left out."""
    with db.transaction() as session:
        return {
            table.name: [tuple(row) for row in session.execute(
                select(*(c for c in table.columns if (table.name, c.name) not in BOOKKEEPING))
                .order_by(*table.primary_key.columns))]
            for table in metadata.sorted_tables
        }


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    return [name for name in before if before[name] != after[name]]


def second_client(client: TestClient) -> TestClient:
    """Another browser on the same app, with its own cookie jar."""
    return browser_session(TestClient(client.app, raise_server_exceptions=False))


def browser_session(client: TestClient) -> TestClient:
    """A test client that, like a browser showing the app's forms, holds a ``dl_csrf`` cookie
    and sends its token (``web.csrf``) with every request; the CSRF tests use bare clients."""
    secret = client.app.state.services.settings.web.secret_key  # type: ignore[attr-defined]
    client.cookies.set(CSRF_COOKIE, "test-browser")
    client.headers[CSRF_HEADER] = form_token(secret, "test-browser")
    return client
