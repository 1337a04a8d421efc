"""Password change (signed in, current password required) and reset by email: a single-use,
expiring link, of which only a digest is stored; a reset request answers the same for every
address and is throttled per account and per IP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dropline.customers.models import CustomerSession, PasswordReset
from dropline.ratelimit import MemoryRateLimiter
from dropline.security import token_digest
from tests.accounts.support import mails_to, reset_token
from tests.builders import PASSWORD, sign_up
from tests.web.support import assert_problem, changed_tables, second_client, snapshot

EMAIL = "reset.me@example.com"
NEW = "violet tin lantern 7"


def _ask(client, email=EMAIL):
    return client.post("/api/v1/password-resets", json={"email": email})


def _complete(client, token, password=NEW):
    return client.post("/api/v1/password-resets/complete",
                       json={"token": token, "new_password": password})


def _signs_in(client, password):
    return client.post("/api/v1/sessions",
                       json={"email": EMAIL, "password": password}).status_code == 200


def test_reset_mails_a_link_whose_token_only_a_digest_of_is_stored(client, db, outbox):
    sign_up(client, email=EMAIL)

    answer = _ask(client)

    [mail] = mails_to(outbox, EMAIL, about="Reset")
    token = reset_token(mail)
    assert answer.status_code == 202
    assert "60 minutes" in mail.get_content()
    with db.transaction() as session:
        assert session.scalar(select(PasswordReset.token_hash)) == token_digest(token)


def test_a_reset_link_sets_the_password_once_and_ends_every_session(client, db, outbox):
    sign_up(client, email=EMAIL)
    elsewhere = second_client(client)
    assert _signs_in(elsewhere, PASSWORD)
    _ask(client)
    token = reset_token(mails_to(outbox, EMAIL)[-1])

    first = _complete(client, token)
    second = _complete(client, token, "another fine phrase 9")

    assert first.status_code == 204
    assert assert_problem(second, 422)["field"] == "token"
    assert client.get("/api/v1/me").status_code == 401
    assert elsewhere.get("/api/v1/me").status_code == 401
    assert not _signs_in(client, PASSWORD) and _signs_in(client, NEW)


def test_using_one_link_spends_the_accounts_other_links(client, outbox):
    sign_up(client, email=EMAIL)
    _ask(client)
    _ask(client)
    older, newer = (reset_token(m) for m in mails_to(outbox, EMAIL, about="Reset"))

    assert _complete(client, newer).status_code == 204
    assert assert_problem(_complete(client, older, "another fine phrase 9"), 422)
    assert _signs_in(client, NEW)


def test_a_reset_link_expires(client, clock, settings, outbox):
    sign_up(client, email=EMAIL)
    _ask(client)
    token = reset_token(mails_to(outbox, EMAIL)[-1])

    clock.advance(minutes=settings.web.password_reset_minutes, seconds=1)

    assert assert_problem(_complete(client, token), 422)["field"] == "token"
    assert _signs_in(client, PASSWORD)


def test_a_reset_link_works_until_it_expires(client, clock, settings, outbox):
    sign_up(client, email=EMAIL)
    _ask(client)
    token = reset_token(mails_to(outbox, EMAIL)[-1])

    clock.advance(minutes=settings.web.password_reset_minutes - 1)

    assert _complete(client, token).status_code == 204


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, db, outbox):
    sign_up(client, email=EMAIL)
    known = _ask(client)
    before = snapshot(db)

    unknown = _ask(client, "nobody@example.com")

    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert mails_to(outbox, "nobody@example.com") == []
    assert changed_tables(before, snapshot(db)) == []


def test_the_reset_form_answers_the_same_for_known_and_unknown_addresses(client, outbox):
    sign_up(client, email=EMAIL)

    known = client.post("/forgot-password", data={"email": EMAIL})
    unknown = client.post("/forgot-password", data={"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(EMAIL, "") == unknown.text.replace("nobody@example.com", "")
    assert len(mails_to(outbox, EMAIL, about="Reset")) == 1
    assert mails_to(outbox, "nobody@example.com") == []


def test_the_reset_form_sets_a_new_password(client, outbox):
    sign_up(client, email=EMAIL)
    client.post("/forgot-password", data={"email": EMAIL})
    token = reset_token(mails_to(outbox, EMAIL)[-1])

    page = client.get(f"/reset-password?token={token}")
    done = client.post("/reset-password", data={"token": token, "new_password": NEW})
    again = client.post("/reset-password", data={"token": token, "new_password": NEW})

    assert f'value="{token}"' in page.text
    assert done.status_code == 200 and "Sign in with it" in done.text
    assert again.status_code == 422 and "Ask for a new link" in again.text
    assert _signs_in(client, NEW)


@pytest.fixture
def pinned(client):
    client.app.state.services.limiter = MemoryRateLimiter(now=lambda: 7_200_030.0)
    return client


def test_reset_requests_are_throttled_per_account_with_retry_after(pinned, settings, outbox):
    sign_up(pinned, email=EMAIL)
    limit = settings.throttle.password_reset_per_account_per_hour
    answers = [_ask(pinned) for _ in range(limit + 1)]

    assert [a.status_code for a in answers[:limit]] == [202] * limit
    problem = assert_problem(answers[limit], 429)
    assert int(answers[limit].headers["Retry-After"]) > 0 and problem["type"].endswith(
        "/rate-limited")
    assert len(mails_to(outbox, EMAIL, about="Reset")) == limit


def test_reset_requests_are_throttled_per_ip_across_addresses(pinned, settings):
    limit = settings.throttle.password_reset_per_ip_per_hour
    answers = [_ask(pinned, f"guess{i}@example.com").status_code for i in range(limit + 1)]

    assert answers == [202] * limit + [429]


# --- change -------------------------------------------------------------------------------

def test_change_needs_the_current_password_and_keeps_this_session_only(client, db):
    sign_up(client, email=EMAIL)
    elsewhere = second_client(client)
    assert _signs_in(elsewhere, PASSWORD)

    wrong = client.post("/api/v1/me/password",
                        json={"current_password": "not it at all", "new_password": NEW})
    right = client.post("/api/v1/me/password",
                        json={"current_password": PASSWORD, "new_password": NEW})

    assert assert_problem(wrong, 422)["field"] == "current_password"
    assert right.status_code == 204
    assert client.get("/api/v1/me").status_code == 200
    assert elsewhere.get("/api/v1/me").status_code == 401
    assert _signs_in(elsewhere, NEW) and not _signs_in(elsewhere, PASSWORD)
    with db.transaction() as session:
        assert session.scalar(select(CustomerSession.id).where(
            CustomerSession.revoked_at.is_(None))) is not None


def test_change_by_form_shows_a_wrong_current_password_beside_its_field(client):
    sign_up(client, email=EMAIL)

    wrong = client.post("/account/password",
                        data={"current_password": "not it at all", "new_password": NEW})
    right = client.post("/account/password",
                        data={"current_password": PASSWORD, "new_password": NEW})

    assert wrong.status_code == 422 and 'id="current_password-error"' in wrong.text
    assert right.status_code == 200 and "Your password is changed" in right.text


def test_change_requires_a_signed_in_customer(client):
    api = client.post("/api/v1/me/password",
                      json={"current_password": PASSWORD, "new_password": NEW})
    form = client.post("/account/password",
                       data={"current_password": PASSWORD, "new_password": NEW},
                       follow_redirects=False)

    assert_problem(api, 401)
    assert form.status_code == 303 and form.headers["location"].startswith("/sign-in")


def test_guessing_the_current_password_counts_as_sign_in_attempts(pinned, settings):
    sign_up(pinned, email=EMAIL)
    limit = settings.throttle.sign_in_per_account_per_minute
    codes = [pinned.post("/api/v1/me/password",
                         json={"current_password": f"guess {i} wrong",
                               "new_password": NEW}).status_code for i in range(limit + 1)]

    assert codes == [422] * limit + [429]
