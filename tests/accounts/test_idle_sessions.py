"""Idle expiry: a shopper's session ends after ``web.session_idle_days`` unused, a console
session after ``web.console_idle_minutes``; each use slides the expiry (sliding window), and
the absolute lifetime still holds."""

from __future__ import annotations

from datetime import timedelta

from dropline.sessions import TOUCH_EVERY
from tests.builders import sign_in_console, sign_up


def test_a_shoppers_session_ends_after_the_idle_time_unused(client, clock, settings):
    sign_up(client)

    clock.advance(days=settings.web.session_idle_days, seconds=1)

    assert client.get("/api/v1/me").status_code == 401


def test_a_shoppers_session_used_within_the_idle_time_slides_on(client, clock, settings):
    sign_up(client)
    idle = timedelta(days=settings.web.session_idle_days)

    step = idle - TOUCH_EVERY
    assert 2 * step > idle and 2 * step < timedelta(days=settings.web.session_days)

    for _ in range(2):  # longer than the idle time in all, never idle for that long
        clock.advance(seconds=step.total_seconds())
        assert client.get("/api/v1/me").status_code == 200


def test_a_used_shoppers_session_still_ends_at_its_absolute_lifetime(client, clock, settings):
    sign_up(client)
    step = timedelta(days=settings.web.session_idle_days - 1)
    lived = timedelta()
    while lived + step < timedelta(days=settings.web.session_days):
        clock.advance(seconds=step.total_seconds())
        lived += step
        assert client.get("/api/v1/me").status_code == 200

    clock.advance(seconds=step.total_seconds())

    assert client.get("/api/v1/me").status_code == 401


def test_a_console_session_ends_after_the_console_idle_time(client, db, clock, settings):
    sign_in_console(client, db, clock)
    assert client.get("/admin", follow_redirects=False).status_code == 200

    clock.advance(minutes=settings.web.console_idle_minutes, seconds=1)
    response = client.get("/admin", follow_redirects=False)

    assert response.status_code == 303 and response.headers["location"].startswith(
        "/admin/login")


def test_a_console_session_in_use_slides_on(client, db, clock, settings):
    sign_in_console(client, db, clock)

    for _ in range(4):
        clock.advance(minutes=settings.web.console_idle_minutes - 1)
        assert client.get("/admin", follow_redirects=False).status_code == 200
