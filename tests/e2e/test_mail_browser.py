"""Mail pages in Chromium: the unsubscribe page works with JavaScript off, and the console's
preview frames show each mail's HTML under the site's real Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from dropline.admin.service import create_admin_user
from dropline.customers.models import Customer
from dropline.notifications.models import MailOutboxItem
from dropline.notifications.rules import unsubscribe_token
from dropline.notifications.service import is_subscribed
from tests.builders import CONSOLE_PASSWORD
from tests.drops.builders import make_drop
from tests.e2e.conftest import ARTIFACTS


@pytest.fixture
def context(browser, request) -> Iterator[object]:
    """A context that keeps the site's CSP (the shared ``page`` fixture bypasses it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  java_script_enabled=request.param)
    yield context
    context.close()


@pytest.mark.parametrize("context", [False], indirect=True, ids=["no-javascript"])
def test_a_customer_unsubscribes_with_javascript_off(context, live_server, db, clock):
    with db.transaction() as session:
        customer = Customer(email="ada@example.com", name="Ada", password_hash="x",
                            created_at=clock.now())
        session.add(customer)
        session.flush()
        customer_id = customer.id
    make_drop(db, clock, starts_in=60)
    with db.transaction() as session:
        mail_id = session.scalar(select(MailOutboxItem.id))
    token = unsubscribe_token("test-secret", mail_id=mail_id, customer_id=customer_id)
    page = context.new_page()

    page.goto(f"{live_server.url}/unsubscribe/{token}")
    page.click("button[type=submit]")

    assert "You are unsubscribed" in page.locator("main").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mail-unsubscribed.png"), full_page=True)
    with db.transaction() as session:
        assert not is_subscribed(session, customer_id=customer_id)


@pytest.mark.parametrize("context", [True], indirect=True, ids=["javascript"])
def test_the_console_shows_each_mail_in_a_sandboxed_frame(context, live_server, db, clock):
    with db.transaction() as session:
        create_admin_user(session, clock=clock, email="ops@brand.example",
                          password=CONSOLE_PASSWORD)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/admin/login")
    page.fill("#email", "ops@brand.example")
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin")

    page.click('nav.side a[href="/admin/mail"]')
    page.wait_for_url(f"{live_server.url}/admin/mail")
    frame = page.frame_locator('iframe[title="HTML version of shipped"]')

    assert "is on its way" in frame.locator("body").inner_text()
    assert "RM123456785GB" in frame.locator("body").inner_text()
    page.locator("#t-drop_announcement").scroll_into_view_if_needed()
    announcement = page.frame_locator('iframe[title="HTML version of drop_announcement"]')
    assert "Unsubscribe" in announcement.locator("body").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-mail-previews.png"))
    assert not errors, errors
