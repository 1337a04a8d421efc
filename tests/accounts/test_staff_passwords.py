"""Console staff passwords: change (signed in, the current password required) and reset by a
mailed link that works once and expires; either ends the staff member's other sessions. The
forgotten-password form answers alike for every address and is throttled like the shop's."""

from __future__ import annotations

import re

from sqlalchemy import select

from dropline.admin.models import AdminPasswordReset, AdminSession
from dropline.ratelimit import MemoryRateLimiter
from dropline.security import token_digest
from tests.accounts.support import mails_to
from tests.builders import CONSOLE_PASSWORD, sign_in_console
from tests.web.support import second_client

EMAIL = "ops@brand.example"
NEW = "violet tin lantern 7"
LINK = re.compile(r"/admin/reset-password\?token=([A-Za-z0-9_\-%]+)")


def _sign_in(client, password):
    return client.post("/admin/login", data={"email": EMAIL, "password": password,
                                             "next": "/admin"}, follow_redirects=False)


def _ask(client, email=EMAIL):
    return client.post("/admin/forgot-password", data={"email": email})


def _token(outbox) -> str:
    [mail] = mails_to(outbox, EMAIL)
    found = LINK.search(mail.get_content())
    assert found, mail.get_content()
    return found.group(1)


def _reset(client, token, password=NEW):
    return client.post("/admin/reset-password", data={"token": token, "new_password": password})


def _live_sessions(db) -> int:
    with db.transaction() as session:
        return len(session.scalars(select(AdminSession.id).where(
            AdminSession.revoked_at.is_(None))).all())


def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(client, db, clock,
                                                                       outbox):
    sign_in_console(client, db, clock, email=EMAIL)
    stranger = second_client(client)

    asked = _ask(stranger)
    token = _token(outbox)

    assert asked.status_code == 200 and "If this address belongs to a staff account" in asked.text
    with db.transaction() as session:
        [stored] = session.scalars(select(AdminPasswordReset.token_hash)).all()
    assert stored == token_digest(token) and token not in stored
    assert stranger.get(f"/admin/reset-password?token={token}").status_code == 200
    done = _reset(stranger, token)
    assert done.status_code == 200 and "Your password is set" in done.text
    assert _live_sessions(db) == 0  # the signed-in console was signed out too
    assert client.get("/admin", follow_redirects=False).status_code == 303
    assert _sign_in(second_client(client), CONSOLE_PASSWORD).status_code == 401
    assert _sign_in(second_client(client), NEW).status_code == 303
    again = _reset(stranger, token, "another fine phrase 9")
    assert again.status_code == 422 and "invalid, used or expired" in again.text


def test_a_reset_link_expires(client, db, clock, outbox, settings):
    sign_in_console(client, db, clock, email=EMAIL)
    _ask(second_client(client))
    token = _token(outbox)

    clock.advance(minutes=settings.web.password_reset_minutes + 1)

    assert _reset(second_client(client), token).status_code == 422
    assert _sign_in(second_client(client), CONSOLE_PASSWORD).status_code == 303


def test_a_weak_new_password_leaves_the_link_usable(client, db, clock, outbox):
    sign_in_console(client, db, clock, email=EMAIL)
    _ask(second_client(client))
    token = _token(outbox)

    weak = _reset(second_client(client), token, "1234567890")

    assert weak.status_code == 422 and 'id="new_password-error"' in weak.text
    assert _reset(second_client(client), token).status_code == 200


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, outbox):
    known = _ask(client, "nobody@brand.example")

    assert known.status_code == 200
    assert "If this address belongs to a staff account" in known.text
    assert list(outbox.glob("*.eml")) == []


def test_a_bad_address_is_shown_beside_the_field(client):
    response = _ask(client, "not an address")

    assert response.status_code == 422 and 'id="email-error"' in response.text


def test_reset_requests_are_throttled_per_account(client, db, clock, outbox):
    client.app.state.services.limiter = MemoryRateLimiter(now=lambda: 7_200_030.0)
    sign_in_console(client, db, clock, email=EMAIL)
    limit = client.app.state.services.settings.throttle.password_reset_per_account_per_hour
    for _ in range(limit):
        assert _ask(second_client(client)).status_code == 200

    refused = _ask(second_client(client))

    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert len(mails_to(outbox, EMAIL)) == limit


def test_change_needs_the_current_password_and_signs_out_other_sessions(client, db, clock):
    sign_in_console(client, db, clock, email=EMAIL)
    elsewhere = second_client(client)
    assert _sign_in(elsewhere, CONSOLE_PASSWORD).status_code == 303

    wrong = client.post("/admin/security/password",
                        data={"current_password": "not it at all", "new_password": NEW})
    assert wrong.status_code == 422 and 'id="current_password-error"' in wrong.text
    assert _live_sessions(db) == 2

    changed = client.post("/admin/security/password",
                          data={"current_password": CONSOLE_PASSWORD, "new_password": NEW})

    assert changed.status_code == 200 and "Your password is changed" in changed.text
    assert client.get("/admin", follow_redirects=False).status_code == 200  # this one stays
    assert elsewhere.get("/admin", follow_redirects=False).status_code == 303
    assert _sign_in(second_client(client), NEW).status_code == 303


def test_the_password_forms_carry_the_form_token(client, db, clock):
    sign_in_console(client, db, clock, email=EMAIL)
    for path in ("/admin/forgot-password", "/admin/reset-password?token=x", "/admin/security"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert 'name="csrf_token"' in page.text, path
