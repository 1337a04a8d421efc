"""The Staff page: an owner invites by email with a role (the mailed link sets a password,
then the member signs in with that role), changes a role, deactivates after a confirmation
(sessions and tokens stop); the shop keeps an active owner; every change is in the audit
trail with its actor; bad input is refused beside its field with the values kept. The same
through ``dropline admin invite|role|deactivate``."""

from __future__ import annotations

import re
from urllib.parse import unquote

from sqlalchemy import select
from typer.testing import CliRunner

from dropline.admin.models import AdminUser, ApiToken
from dropline.admin.roles import Role
from dropline.admin.service import issue_token
from dropline.audit.models import AuditLog
from dropline.cli import app as cli_app
from tests.admin.console_support import make_staff, sign_in_as
from tests.accounts.support import mails_to
from tests.web.support import second_client

LINK = re.compile(r"/admin/reset-password\?token=([A-Za-z0-9_\-%]+)")
NEW = "violet tin lantern 7"


def test_an_owner_invites_a_packer_who_sets_a_password_and_signs_in_as_a_packer(
        client, db, clock, outbox):
    owner_id = sign_in_as(client, db, clock, Role.owner)
    response = client.post("/admin/staff/invite", data={
        "email": "Sam@Brand.example", "name": "Sam", "role": "packer"}, follow_redirects=False)
    assert response.status_code == 303
    [mail] = mails_to(outbox, "sam@brand.example")
    assert "packer" in mail.get_content()
    token = unquote(LINK.search(mail.get_content()).group(1))

    sam = second_client(client)
    assert sam.post("/admin/reset-password", data={"token": token, "new_password": NEW}
                    ).status_code == 200
    assert sam.post("/admin/login", data={"email": "sam@brand.example", "password": NEW},
                    follow_redirects=False).status_code == 303
    assert sam.get("/admin/pick-list").status_code == 200
    assert sam.get("/admin/staff").status_code == 403
    with db.transaction() as session:
        user = session.scalar(select(AdminUser).where(AdminUser.email == "sam@brand.example"))
        assert (user.role, user.name) == ("packer", "Sam")
        created = session.scalar(select(AuditLog).where(
            AuditLog.entity == "admin_users", AuditLog.entity_id == str(user.id),
            AuditLog.action == "create"))
        assert created.actor == f"admin:{owner_id}"
        assert created.changes["role"] == [None, "packer"]
    # the link works once
    assert sam.post("/admin/reset-password", data={"token": token, "new_password": NEW + "x"}
                    ).status_code == 422


def test_a_refused_invitation_says_why_beside_the_field_and_keeps_the_values(client, db, clock):
    sign_in_as(client, db, clock, Role.owner)
    _, taken = make_staff(db, clock, Role.analyst)
    for data, field in (({"email": "not an address", "name": "Kim", "role": "manager"}, "email"),
                        ({"email": "kim@brand.example", "name": "Kim", "role": "boss"}, "role"),
                        ({"email": taken, "name": "Kim", "role": "manager"}, "email")):
        response = client.post("/admin/staff/invite", data=data)
        assert response.status_code in (409, 422), response.text
        assert f'id="{field}-error"' in response.text
        assert 'value="Kim"' in response.text
    with db.transaction() as session:
        assert session.scalar(select(AdminUser).where(
            AdminUser.email == "kim@brand.example")) is None


def test_changing_a_role_and_deactivating_after_a_confirmation(client, db, clock):
    owner_id = sign_in_as(client, db, clock, Role.owner)
    member_id, email = make_staff(db, clock, Role.analyst)
    member = second_client(client)
    assert member.post("/admin/login", data={"email": email, "password": "console password 1"},
                       follow_redirects=False).status_code == 303
    assert member.get("/admin/orders").status_code == 200
    assert member.get("/admin/pick-list").status_code == 403

    assert client.post(f"/admin/staff/{member_id}/role", data={"role": "packer"},
                       follow_redirects=False).status_code == 303
    assert member.get("/admin/pick-list").status_code == 200  # the same session, new role
    assert member.get("/admin/telemetry").status_code == 403

    with db.transaction() as session:
        secret = issue_token(session, clock=clock, name="t", scopes=["orders:read"],
                             admin_user_id=member_id).secret
    asked = client.post(f"/admin/staff/{member_id}/deactivate", data={})
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
    with db.transaction() as session:
        assert session.get(AdminUser, member_id).deactivated_at is None  # only asked
    done = client.post(f"/admin/staff/{member_id}/deactivate", data={"confirm": "yes"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert member.get("/admin/orders", follow_redirects=False).status_code == 303  # to login
    assert client.get("/api/v1/admin/orders",
                      headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert member.post("/admin/login", data={"email": email, "password": "console password 1"}
                       ).status_code == 401
    with db.transaction() as session:
        assert session.scalar(select(ApiToken.revoked_at).where(
            ApiToken.admin_user_id == member_id)) is not None
        rows = session.scalars(select(AuditLog).where(
            AuditLog.entity == "admin_users", AuditLog.entity_id == str(member_id),
            AuditLog.action == "update").order_by(AuditLog.id)).all()
        console = [(row.actor, sorted(row.changes)) for row in rows
                   if row.changes.get("role", [None])[0] != "owner"]  # the builder's own
        assert console == [(f"admin:{owner_id}", ["role"]),
                           (f"admin:{owner_id}", ["deactivated_at"])]


def test_the_last_active_owner_keeps_the_role(client, db, clock):
    owner_id = sign_in_as(client, db, clock, Role.owner)
    response = client.post(f"/admin/staff/{owner_id}/role", data={"role": "manager"})
    assert response.status_code == 409
    assert f'id="role-{owner_id}-error"' in response.text
    with db.transaction() as session:
        assert session.get(AdminUser, owner_id).role == "owner"


def test_the_cli_invites_changes_roles_and_deactivates(db, clock, database_url, tmp_path,
                                                       monkeypatch):
    outbox = tmp_path / "cli-outbox"
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("DROPLINE_EMAIL_DIR", str(outbox))
    runner = CliRunner()
    make_staff(db, clock, Role.owner)
    invited = runner.invoke(cli_app, ["admin", "invite", "lee@brand.example", "--role",
                                      "counter", "--name", "Lee"])
    assert invited.exit_code == 0, invited.output
    assert len(mails_to(outbox, "lee@brand.example")) == 1
    assert runner.invoke(cli_app, ["admin", "role", "lee@brand.example", "manager"]
                         ).exit_code == 0
    bad = runner.invoke(cli_app, ["admin", "role", "lee@brand.example", "boss"])
    assert bad.exit_code == 2 and "unknown role" in bad.output
    assert runner.invoke(cli_app, ["admin", "deactivate", "lee@brand.example"]).exit_code == 0
    with db.transaction() as session:
        lee = session.scalar(select(AdminUser).where(AdminUser.email == "lee@brand.example"))
        assert lee.role == "manager" and lee.deactivated_at is not None
    for command in (["admin", "invite", "--help"], ["admin", "role", "--help"],
                    ["admin", "deactivate", "--help"]):
        assert "Example: dropline admin" in runner.invoke(cli_app, command).output
