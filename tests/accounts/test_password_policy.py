"""The password policy (``dropline.passwords``): one rule for every path that sets a password.
The pure rule is tested on strings; one scenario table then runs each refused password
against every path (sign-up, change and reset, each by API and by form, and the CLI's
console user), which must refuse it with the policy's message beside the field and change
nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from dropline.admin.models import AdminUser
from dropline.cli import app as cli
from dropline.customers.models import Customer
from dropline.passwords import MIN_LENGTH, password_problem
from tests.accounts.support import mails_to, reset_token
from tests.builders import PASSWORD, sign_up
from tests.web.support import assert_problem, changed_tables, snapshot

EMAIL = "ada.lovelace@example.com"


@pytest.mark.parametrize("password", [
    "1234567890", "0987654321", "password1!", "Password123!", "P@ssw0rd2024", "qwertyuiop",
    "aaaaaaaaaaaa", "iloveyou123", "trustno1trustno1", "ada.lovelace99", "Dragon1234!",
])
def test_common_patterned_and_personal_passwords_are_refused(password):
    assert password_problem(password, email=EMAIL) is not None


@pytest.mark.parametrize("password", [
    "correct horse battery", "ember-and-fig-demo", "violet tin lantern 7", "Kq8#mZ2!vR4t",
])
def test_uncommon_passphrases_are_accepted(password):
    assert password_problem(password, email=EMAIL) is None


def test_too_short_and_too_long_are_refused_with_the_bound():
    assert str(MIN_LENGTH) in password_problem("Kq8#mZ2!v", email="")
    assert "200" in password_problem("Kq8#mZ2!v" * 30, email="")


# --- one table, every path -------------------------------------------------------------------

WEAK = [("1234567890", "simple pattern"), ("Password123!", "most common"),
        ("ada.lovelace-2026", "email address")]


def _api_sign_up(client: TestClient, password: str, _: Any) -> Any:
    return client.post("/api/v1/customers", json={"email": EMAIL, "password": password})


def _form_sign_up(client: TestClient, password: str, _: Any) -> Any:
    return client.post("/sign-up", data={"email": EMAIL, "password": password})


def _api_change(client: TestClient, password: str, _: Any) -> Any:
    return client.post("/api/v1/me/password",
                       json={"current_password": PASSWORD, "new_password": password})


def _form_change(client: TestClient, password: str, _: Any) -> Any:
    return client.post("/account/password",
                       data={"current_password": PASSWORD, "new_password": password})


def _api_reset(client: TestClient, password: str, token: str) -> Any:
    return client.post("/api/v1/password-resets/complete",
                       json={"token": token, "new_password": password})


def _form_reset(client: TestClient, password: str, token: str) -> Any:
    return client.post("/reset-password", data={"token": token, "new_password": password})


PATHS: dict[str, tuple[Callable[..., Any], str, str]] = {
    # path: (attempt, what it needs first, the refused field)
    "api sign-up": (_api_sign_up, "nothing", "password"),
    "form sign-up": (_form_sign_up, "nothing", "password"),
    "api change": (_api_change, "account", "new_password"),
    "form change": (_form_change, "account", "new_password"),
    "api reset": (_api_reset, "reset link", "new_password"),
    "form reset": (_form_reset, "reset link", "new_password"),
}


@pytest.mark.parametrize(("password", "why"), WEAK)
@pytest.mark.parametrize("path", PATHS)
def test_every_path_refuses_a_weak_password_beside_the_field_and_changes_nothing(
        client, db, outbox, path, password, why):
    attempt, needs, field = PATHS[path]
    token = ""
    if needs != "nothing":
        sign_up(client, email=EMAIL)
    if needs == "reset link":
        client.post("/api/v1/password-resets", json={"email": EMAIL})
        token = reset_token(mails_to(outbox, EMAIL)[-1])
    before = snapshot(db)

    response = attempt(client, password, token)

    assert changed_tables(before, snapshot(db)) == []
    if path.startswith("api"):
        problem = assert_problem(response, 422)
        assert problem["field"] == field and why in problem["detail"]
    else:
        assert response.status_code == 422
        assert f'id="{field}-error"' in response.text and why in response.text
        assert f'aria-describedby="{field}-error"' in response.text


@pytest.mark.parametrize(("password", "why"), WEAK)
def test_the_cli_refuses_a_weak_console_password_in_one_line(db, monkeypatch, password, why):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)

    result = CliRunner().invoke(cli, ["admin", "create-user", EMAIL, "--password", password])

    assert result.exit_code == 2 and why in result.output
    assert "Traceback" not in result.output
    with db.transaction() as session:
        assert session.scalar(select(AdminUser)) is None


def test_a_refused_password_leaves_the_reset_link_usable(client, db, outbox):
    sign_up(client, email=EMAIL)
    client.post("/api/v1/password-resets", json={"email": EMAIL})
    token = reset_token(mails_to(outbox, EMAIL)[-1])
    _api_reset(client, "1234567890", token)

    accepted = _api_reset(client, "violet tin lantern 7", token)

    assert accepted.status_code == 204
    with db.transaction() as session:
        assert session.scalar(select(Customer.email)) == EMAIL
