"""Under the Content-Security-Policy (script-src 'self', no inline script) the pages still work
in real Chromium and the browser reports no violation: the API docs render from local files,
and a console page is refused inside a frame."""

from __future__ import annotations

import pytest


@pytest.fixture
def page(browser):
    """A page that keeps the site's CSP (the shared fixture bypasses it for wait_for_function,
    which these tests therefore do not use)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _violations(page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    return messages


def test_swagger_ui_renders_from_local_files_under_the_policy(page, live_server):
    violations = _violations(page)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(live_server.url) and not r.url.startswith("data:") else None)

    page.goto(live_server.url + "/docs")
    page.locator(".swagger-ui .info .title").wait_for(timeout=20_000)
    page.locator(".opblock").first.wait_for()

    assert "Dropline API" in page.locator(".swagger-ui .info .title").inner_text()
    assert violations == [] and outside == []


def test_the_storefront_runs_its_scripts_without_a_violation(page, live_server):
    violations = _violations(page)

    page.goto(live_server.url + "/")
    page.wait_for_load_state("networkidle")
    page.goto(live_server.url + "/search")
    page.locator("#index-state[data-ready=true]").wait_for(state="attached")

    assert violations == []


def test_the_console_sign_in_is_not_shown_in_a_frame(page, live_server):
    page.set_content(f'<iframe id="f" src="{live_server.url}/admin/login"></iframe>')
    page.wait_for_timeout(1500)

    frame = page.frame_locator("#f")
    assert frame.locator("input[type=password]").count() == 0
