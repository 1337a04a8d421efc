"""Staff roles, enforced on the server: every console page and form (collected from the app's
router, so a new one is covered) declares a scope, and each role gets exactly what its
permission set allows (403 otherwise); the navigation lists exactly the entries the role may
open, each with the scope of its page; a staff member's API tokens never exceed their role;
a forged form without its CSRF token is refused and changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dropline.admin.models import AdminUser, ApiToken
from dropline.admin.roles import ROLE_SCOPES, Role, capped_scopes, scopes_of
from dropline.admin.service import ALL_SCOPES, SCOPES, issue_token
from dropline.audit.models import AuditLog
from dropline.config import Settings
from dropline.web.app import create_app
from tests.admin.console_support import console_routes, declared_scope, make_staff, sign_in_as
from tests.web.support import second_client

APP = create_app(Settings(database={"url": "sqlite://"}, web={"run_scheduler": False}),
                 run_worker=False)
ROUTES = console_routes(APP)


def _may(role: Role, scope: str | None) -> bool:
    held = scopes_of(role)
    return scope is None or ALL_SCOPES in held or scope in held


def concrete(path: str) -> str:
    """Path parameters become values that name nothing: an allowed call is a harmless 4xx."""
    return re.sub(r"\{[^}]+\}", "999999", path)


def test_every_console_route_and_form_declares_a_known_scope():
    assert len(ROUTES) >= 40
    undeclared = [(m, p) for m, p, route in ROUTES if not declared_scope(route)[0]]
    assert undeclared == []
    unknown = {declared_scope(route)[1] for _, _, route in ROUTES} - set(SCOPES) - {None}
    assert unknown == set()
    # the areas of issue 24 are among them
    paths = {p for _, p, _ in ROUTES}
    assert {"/admin/orders", "/admin/customers", "/admin/staff", "/admin/pick-list",
            "/admin/drops", "/admin/risk", "/admin/audit", "/admin/telemetry"} <= paths


def test_each_nav_entry_has_the_scope_of_its_page():
    pages = {p: declared_scope(route)[1] for m, p, route in ROUTES if m == "GET"}
    for item in APP.state.navigation:
        assert item.path in pages, item
        assert item.scope == pages[item.path], item


def test_every_role_is_a_set_of_known_scopes():
    for role, held in ROLE_SCOPES.items():
        assert held <= set(SCOPES) | {ALL_SCOPES}, role
    assert ROLE_SCOPES[Role.owner] == {ALL_SCOPES}
    assert "staff:manage" not in ROLE_SCOPES[Role.manager]
    assert not any(s.endswith((":refund", ":erase", ":manage", ":write", ":decide"))
                   for s in ROLE_SCOPES[Role.analyst])


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_each_role_opens_exactly_the_pages_and_forms_its_permission_set_allows(
        client, db, clock, role):
    sign_in_as(client, db, clock, role)
    wrong = []
    for method, path, route in ROUTES:
        scope = declared_scope(route)[1]
        url = concrete(path)
        if method == "GET":
            response = client.get(url, follow_redirects=False)
        elif "/counter/" in path:  # the counter's JSON writes
            response = client.post(url, json={}, follow_redirects=False)
        else:
            response = client.request(method, url, data={}, follow_redirects=False)
        allowed = _may(role, scope)
        location = response.headers.get("location", "")
        if allowed and (response.status_code == 403 or "/admin/login" in location):
            wrong.append(("refused", method, path, scope, response.status_code))
        if not allowed and response.status_code != 403:
            wrong.append(("let through", method, path, scope, response.status_code))
        if allowed and method == "GET" and "{" not in path and not path.endswith(
                (".csv", "/find")):
            if response.status_code != 200:
                wrong.append(("page failed", method, path, scope, response.status_code))
    assert wrong == []


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_the_navigation_shows_exactly_what_the_role_may_open(client, db, clock, role):
    sign_in_as(client, db, clock, role)
    page = client.get("/admin")
    assert page.status_code == 200
    nav = re.search(r'<nav class="side"[^>]*>(.*?)</nav>', page.text, re.DOTALL).group(1)
    shown = set(re.findall(r'href="([^"]+)"', nav))
    expected = {item.path for item in client.app.state.navigation if _may(role, item.scope)}
    assert shown == expected
    if role is Role.packer:
        assert "/admin/pick-list" in shown and "/admin/staff" not in shown
        assert "/admin/telemetry" not in shown


# --- API tokens: a staff member's token never exceeds their role ----------------------------

def _token_of(db, clock, user_id: int, *scopes: str) -> dict[str, str]:
    with db.transaction() as session:
        issued = issue_token(session, clock=clock, name="mine", scopes=list(scopes),
                             admin_user_id=user_id)
        return {"Authorization": f"Bearer {issued.secret}"}


def test_capped_scopes_are_the_token_within_the_role():
    assert capped_scopes(["*"], role=Role.packer) == tuple(sorted(scopes_of(Role.packer)))
    assert capped_scopes(["orders:read", "orders:refund"], role=Role.packer) == ("orders:read",)
    assert capped_scopes(["orders:refund"], role=Role.owner) == ("orders:refund",)


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_a_staff_members_api_token_does_what_their_role_allows_and_no_more(
        client, db, clock, role):
    user_id, _ = make_staff(db, clock, role)
    headers = _token_of(db, clock, user_id, "*")
    probes = {"orders:read": ("GET", "/api/v1/admin/orders"),
              "customers:read": ("GET", "/api/v1/admin/customers"),
              "tokens:manage": ("GET", "/api/v1/admin/tokens"),
              "events:read": ("GET", "/api/v1/admin/events")}
    for scope, (method, path) in probes.items():
        response = client.request(method, path, headers=headers)
        expected = 200 if _may(role, scope) else 403
        assert response.status_code == expected, (scope, response.text)


def test_lowering_a_role_lowers_the_tokens_and_deactivating_stops_them(client, db, clock):
    user_id, _ = make_staff(db, clock, Role.manager)
    headers = _token_of(db, clock, user_id, "orders:read", "tokens:manage")
    assert client.get("/api/v1/admin/tokens", headers=headers).status_code == 200
    with db.transaction() as session:
        session.get(AdminUser, user_id).role = Role.packer.value
    assert client.get("/api/v1/admin/tokens", headers=headers).status_code == 403
    assert client.get("/api/v1/admin/orders", headers=headers).status_code == 200
    with db.transaction() as session:
        session.get(AdminUser, user_id).deactivated_at = clock.now()
    assert client.get("/api/v1/admin/orders", headers=headers).status_code == 401


def test_a_token_issued_through_the_api_cannot_exceed_the_issuers_role(client, db, clock):
    user_id, _ = make_staff(db, clock, Role.manager)
    headers = _token_of(db, clock, user_id, "*")
    refused = client.post("/api/v1/admin/tokens", headers=headers,
                          json={"name": "escalate", "scopes": ["staff:manage"]})
    assert refused.status_code == 403
    granted = client.post("/api/v1/admin/tokens", headers=headers,
                          json={"name": "reader", "scopes": ["orders:read"]})
    assert granted.status_code == 201
    with db.transaction() as session:
        child = session.scalar(select(ApiToken).where(ApiToken.name == "reader"))
        assert child.admin_user_id == user_id  # so a later, lower role lowers it too


def test_the_console_tokens_page_refuses_scopes_beyond_the_role_beside_the_field(
        client, db, clock):
    user_id = sign_in_as(client, db, clock, Role.manager)
    response = client.post("/admin/tokens", data={"name": "ci", "scopes": ["staff:manage"]})
    assert response.status_code == 403
    assert 'id="scopes-error"' in response.text and "staff:manage" in response.text
    assert 'value="ci"' in response.text  # the value is kept
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ApiToken).where(
            ApiToken.admin_user_id == user_id)) == 0
    issued = client.post("/admin/tokens", data={"name": "ci", "scopes": ["orders:read"]})
    assert issued.status_code == 201
    secret = re.search(r'class="issued-token">([^<]+)<', issued.text).group(1)
    assert client.get("/api/v1/admin/orders",
                      headers={"Authorization": f"Bearer {secret}"}).status_code == 200


# --- CSRF ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "data"), [
    ("/admin/staff/invite", {"email": "forged@brand.example", "role": "owner"}),
    ("/admin/orders/1/refund", {"amount": "10.00", "reason": "forged"}),
    ("/admin/customers/1/erase", {"confirm": "yes"}),
])
def test_a_forged_console_form_without_its_csrf_token_is_refused(client, db, clock, path, data):
    sign_in_as(client, db, clock, Role.owner)
    forger = second_client(client)
    forger.cookies.set("dl_admin", client.cookies.get("dl_admin"), path="/admin")
    del forger.headers["x-csrf-token"]
    with db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(AuditLog))
    response = forger.post(path, data=data, follow_redirects=False)
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == before
        assert session.scalar(select(AdminUser.id).where(
            AdminUser.email == "forged@brand.example")) is None


def test_the_documented_roles_table_is_the_code():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "capabilities" /
           "console-operations.md").read_text(encoding="utf-8")
    for scope in SCOPES:
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{scope}` |"))
        marks = [cell.strip() for cell in row.strip("|").split("|")[2:]]
        assert marks == ["✓" if _may(role, scope) else "" for role in Role], scope
