"""The admin console in Chromium on the demo shop: sign in, then every page in the navigation
registry (so pages other modules add are covered without editing this test), the playbooks
and the checklist. Each must load without an error status or a script error, show its heading,
and leave a screenshot in test-artifacts/console-<page>.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from dropline.clock import FrozenClock
from dropline.db import Database
from dropline.web.app import console_navigation, create_app
from tests.console.support import ADMIN, NOW, demo_settings, seed_demo_database
from tests.e2e.conftest import ARTIFACTS, LiveServer

# Headings of the pages this issue owns or knows; any other page must simply have one.
EXPECTED_H1 = {
    "/admin": "Overview", "/admin/drops": "Drops", "/admin/fulfilment": "Fulfilment",
    "/admin/telemetry": "Telemetry", "/admin/playbooks": "Playbooks",
    "/admin/checklist": "90-day checklist", "/admin/memberships/cohort-map": "Membership cohort map",
    "/admin/playbooks/cohort-map": "Membership cohort map",
    "/admin/playbooks/drop-runbook": "Micro-drop runbook: ",
    "/admin/playbooks/decision-tree": "Fulfilment decision tree",
}
EXTRA_PAGES = ["/admin/playbooks/cohort-map", "/admin/playbooks/drop-runbook",
               "/admin/playbooks/decision-tree"]


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = seed_demo_database(tmp_path_factory, "console-e2e")
    db = Database(url)
    server = LiveServer(create_app(demo_settings(url), clock=FrozenClock(NOW), db=db,
                                   run_worker=False))
    server.start()
    yield server
    server.stop()
    db.dispose()


@pytest.fixture(scope="module")
def signed_in(browser, console_server) -> Iterator[object]:
    """One signed-in browser context for the module (signing in is not what is under test
    after the first time)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{console_server.url}/admin")
    assert "/admin/login" in page.url  # the console sends strangers to sign in
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{console_server.url}/admin")
    yield page
    context.close()


def _pages() -> list[str]:
    paths = [item.path for item in sorted(console_navigation(), key=lambda item: item.rank)]
    return paths + [p for p in EXTRA_PAGES if p not in paths]


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/admin")).strip("-") or "overview"


@pytest.mark.parametrize("path", _pages(), ids=_slug)
def test_every_console_page_renders_with_its_heading(signed_in, console_server, path):
    page = signed_in
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(f"{console_server.url}{path}")

    assert response is not None and response.status < 400, (path, response and response.status)
    assert "/admin/login" not in page.url
    assert page.locator("body.console").count() == 1, path  # every page in the console layout
    heading = page.locator("main h1")
    assert heading.count() == 1, path
    text = heading.inner_text().strip()
    assert text and text.startswith(EXPECTED_H1.get(path, "")), (path, text)
    assert page.locator('nav.side a[aria-current="page"]').count() >= 1, path
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{_slug(path)}.png"), full_page=True)
    assert not errors, errors


def test_the_overview_links_through_to_the_next_drops_runbook(signed_in, console_server):
    page = signed_in
    page.goto(f"{console_server.url}/admin")
    page.click("text=runbook")
    page.wait_for_url(re.compile(r"/admin/playbooks/drop-runbook$"))

    assert page.locator("main h1").inner_text().startswith("Micro-drop runbook: ")
    assert page.locator("main table").count() >= 1  # early access per tier


def test_the_console_reflows_on_a_phone(browser, console_server, signed_in):
    """Narrow screens: the navigation becomes a row above the page, nothing overflows it."""
    state = signed_in.context.storage_state()
    context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=state)
    page = context.new_page()
    try:
        page.goto(f"{console_server.url}/admin/checklist")
        nav = page.locator("nav.side").bounding_box()
        main = page.locator("main").bounding_box()
        assert nav and main and nav["y"] + nav["height"] <= main["y"] + 1
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, width
        page.screenshot(path=str(ARTIFACTS / "console-checklist-phone.png"), full_page=True)
    finally:
        context.close()


def test_a_past_drop_opens_its_report_with_a_sell_through_chart(signed_in, console_server):
    page = signed_in
    page.goto(f"{console_server.url}/admin/drops")
    row = page.locator("tbody tr", has=page.locator(".pill-ended")).first
    name = row.locator("a").inner_text()
    row.locator("a").click()
    page.wait_for_url(re.compile(r"/admin/drops/\d+$"))

    assert page.locator("main h1").inner_text() == name
    assert page.locator("figure.chart svg[role=img]").count() == 1
    assert page.get_by_text("Post-drop report").count() == 1
    page.screenshot(path=str(ARTIFACTS / "console-drop-report.png"), full_page=True)
