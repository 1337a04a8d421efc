"""A token can only grant the scopes it holds: issuing never escalates privilege. ``*`` is
granted only by a ``*`` holder; the CLI (the operator) may issue any scope."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dropline.admin.models import ApiToken
from tests.builders import api_token
from tests.web.support import assert_problem


def _token_count(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(ApiToken))


@pytest.mark.parametrize("scopes", [["*"], ["orders:refund"], ["orders:read", "orders:refund"]])
def test_a_token_cannot_grant_scopes_it_lacks(client, db, clock, scopes):
    manager = api_token(db, clock, "tokens:manage", "orders:read")
    before = _token_count(db)

    response = client.post("/api/v1/admin/tokens", headers=manager,
                           json={"name": "escalate", "scopes": scopes})

    problem = assert_problem(response, 403)
    assert problem["type"].endswith("/permission-denied")
    assert "orders:refund" in problem["detail"] or "*" in problem["detail"]
    assert _token_count(db) == before


def test_a_token_may_grant_a_subset_of_its_scopes(client, db, clock):
    manager = api_token(db, clock, "tokens:manage", "orders:read", "orders:refund")

    response = client.post("/api/v1/admin/tokens", headers=manager,
                           json={"name": "reporting", "scopes": ["orders:read"]})

    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == ["orders:read"]


def test_an_all_scopes_token_may_grant_anything(client, db, clock):
    root = api_token(db, clock, "*")

    for scopes in (["*"], ["tokens:manage", "telemetry:read"]):
        response = client.post("/api/v1/admin/tokens", headers=root,
                               json={"name": "ops", "scopes": scopes})
        assert response.status_code == 201, response.text
        assert response.json()["scopes"] == sorted(scopes)


def test_an_unknown_scope_is_invalid_input_before_it_is_an_escalation(client, db, clock):
    manager = api_token(db, clock, "tokens:manage")

    response = client.post("/api/v1/admin/tokens", headers=manager,
                           json={"name": "x", "scopes": ["root"]})

    assert_problem(response, 422)
