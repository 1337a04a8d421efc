"""The console's TOTP second factor: enrolment shows a secret and its otpauth URI and is
confirmed by a code; from then on sign-in asks for a code after the password, refuses a wrong
or replayed one, throttles guessing, accepts a recovery code once; an operator can reset it."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dropline.admin.models import AdminSession, AdminUser, RecoveryCode
from dropline.cli import app as cli
from dropline.ratelimit import MemoryRateLimiter
from dropline.web.admin import ADMIN_COOKIE
from tests.builders import CONSOLE_PASSWORD, sign_in_console
from tests.web.support import second_client

EMAIL = "ops@brand.example"


def _enrol(client, clock) -> tuple[pyotp.TOTP, list[str]]:
    """Turns TOTP on for the signed-in admin; returns their authenticator and recovery codes."""
    page = client.post("/admin/security/totp")
    secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    uri = unquote(re.search(r'class="totp-uri">([^<]+)<', page.text).group(1))
    assert urlparse(uri).scheme == "otpauth" and parse_qs(urlparse(uri).query)["secret"] == [
        secret]
    totp = pyotp.TOTP(secret)
    confirmed = client.post("/admin/security/totp/confirm", data={"code": totp.at(clock.now())})
    assert confirmed.status_code == 200, confirmed.text
    codes = re.findall(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>", confirmed.text)
    assert len(codes) == 10
    return totp, codes


def _password(client, password=CONSOLE_PASSWORD):
    return client.post("/admin/login", data={"email": EMAIL, "password": password,
                                             "next": "/admin"}, follow_redirects=False)


def _code(client, code):
    return client.post("/admin/login/code", data={"code": code, "next": "/admin"},
                       follow_redirects=False)


def _opens_console(client) -> bool:
    return client.get("/admin", follow_redirects=False).status_code == 200


@pytest.fixture
def enrolled(client, db, clock):
    sign_in_console(client, db, clock, email=EMAIL)
    totp, codes = _enrol(client, clock)
    browser = second_client(client)
    return browser, totp, codes


def test_after_enrolment_the_password_alone_opens_no_console_page(enrolled, clock):
    browser, totp, _ = enrolled

    after_password = _password(browser)

    assert after_password.status_code == 303
    assert after_password.headers["location"].startswith("/admin/login/code")
    assert not _opens_console(browser)
    clock.advance(seconds=30)
    assert _code(browser, totp.at(clock.now())).headers["location"] == "/admin"
    assert _opens_console(browser)


def test_the_code_step_issues_a_new_session_token(enrolled, clock):
    browser, totp, _ = enrolled
    pending = _password(browser).cookies[ADMIN_COOKIE]
    clock.advance(seconds=30)

    full = _code(browser, totp.at(clock.now())).cookies[ADMIN_COOKIE]

    assert full != pending and _opens_console(browser)
    replay = second_client(browser)
    replay.cookies.set(ADMIN_COOKIE, pending)
    assert not _opens_console(replay)


def test_a_wrong_code_is_refused_with_a_message(enrolled, clock, db):
    browser, totp, _ = enrolled
    _password(browser)
    near = {totp.at(clock.now(), counter_offset=k) for k in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in near)

    refused = _code(browser, wrong)

    assert refused.status_code == 401 and "Wrong code" in refused.text
    assert 'aria-describedby="code-error"' in refused.text
    assert not _opens_console(browser)


def test_a_code_is_not_accepted_twice(enrolled, clock):
    browser, totp, _ = enrolled
    clock.advance(seconds=30)
    code = totp.at(clock.now())
    _password(browser)
    assert _code(browser, code).status_code == 303

    thief = second_client(browser)
    _password(thief)

    assert _code(thief, code).status_code == 401


def test_a_code_from_the_next_or_last_step_is_accepted_for_clock_drift(enrolled, clock):
    browser, totp, _ = enrolled
    clock.advance(seconds=90)
    _password(browser)

    assert _code(browser, totp.at(clock.now(), counter_offset=1)).status_code == 303


def test_an_old_code_is_refused(enrolled, clock):
    browser, totp, _ = enrolled
    clock.advance(seconds=90)
    stale = totp.at(clock.now(), counter_offset=-2)
    _password(browser)

    assert _code(browser, stale).status_code == 401


def test_a_recovery_code_works_once(enrolled, db):
    browser, _, codes = enrolled
    _password(browser)
    assert _code(browser, codes[0]).status_code == 303

    again = second_client(browser)
    _password(again)

    assert _code(again, codes[0]).status_code == 401
    assert _code(again, codes[1]).status_code == 303
    with db.transaction() as session:
        assert session.scalars(select(RecoveryCode.code_hash)).all()
        assert codes[0] not in {h for h in session.scalars(select(RecoveryCode.code_hash))}


def test_code_guessing_is_throttled_per_account_with_retry_after(enrolled, settings):
    browser, _, _ = enrolled
    browser.app.state.services.limiter = MemoryRateLimiter(now=lambda: 9_000_030.0)
    _password(browser)
    limit = settings.throttle.second_factor_per_account
    answers = [_code(browser, f"{i:06d}") for i in range(limit + 1)]

    assert [a.status_code for a in answers] == [401] * limit + [429]
    assert int(answers[-1].headers["Retry-After"]) > 0
    # A fresh password step does not buy more guesses: the count is the account's.
    other = second_client(browser)
    _password(other)
    assert _code(other, "000000").status_code == 429


def test_the_code_step_lapses(enrolled, clock):
    browser, totp, _ = enrolled
    _password(browser)

    clock.advance(minutes=6)
    late = _code(browser, totp.at(clock.now()))

    assert late.status_code == 303 and late.headers["location"].startswith("/admin/login?")
    assert not _opens_console(browser)


def test_enrolment_is_only_on_once_a_code_confirms_it(client, db, clock):
    sign_in_console(client, db, clock, email=EMAIL)
    client.post("/admin/security/totp")

    refused = client.post("/admin/security/totp/confirm", data={"code": "000000"})
    later = second_client(client)

    assert refused.status_code == 422 and 'id="code-error"' in refused.text
    assert _password(later).headers["location"] == "/admin"  # still the password alone
    with db.transaction() as session:
        assert session.scalar(select(AdminUser.totp_confirmed_at)) is None


def test_an_operator_resets_a_lost_second_factor(enrolled, db, monkeypatch):
    browser, _, _ = enrolled
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)

    result = CliRunner().invoke(cli, ["admin", "reset-2fa", EMAIL])

    assert result.exit_code == 0, result.output
    assert _password(browser).headers["location"] == "/admin"
    with db.transaction() as session:
        user = session.scalar(select(AdminUser))
        assert (user.totp_secret, user.totp_confirmed_at) == (None, None)
        assert session.scalar(select(RecoveryCode)) is None
        # The sessions from before the reset ended; only the one just opened is live.
        assert len(session.scalars(select(AdminSession).where(
            AdminSession.revoked_at.is_(None))).all()) == 1


def test_resetting_an_unknown_staff_member_is_one_line(db, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)

    result = CliRunner().invoke(cli, ["admin", "reset-2fa", "nobody@brand.example"])

    assert result.exit_code == 2 and "no admin user" in result.output
    assert "Traceback" not in result.output
