"""Browser and live-server fixtures: the app served by uvicorn on 127.0.0.1 in a thread, and
Playwright driving Debian's Chromium. Screenshots go to test-artifacts/ (kept by CI)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from dropline.web.app import create_app

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str:
    path = os.environ.get("DROPLINE_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: `apt-get install chromium` (./run tests does "
                    "this when run as root), or set DROPLINE_CHROMIUM to its path.")
    return path


class LiveServer:
    def __init__(self, app: object, port: int | None = None) -> None:
        if port is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:  # bounded wait for the socket to be bound
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start within 20 s")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def live_server(db, clock, settings) -> Iterator[LiveServer]:
    server = LiveServer(create_app(settings, clock=clock, db=db, run_worker=False))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test file: Playwright's sync API keeps an event loop running in the
    main thread while it is started, and the suite's other files (asyncio.run in the drop
    engine's tests) may follow in the same xdist worker."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request) -> Iterator[object]:
    # Playwright's wait_for_function evaluates its string with eval, which the site's CSP
    # forbids; test_csp_browser checks the policy in a context that does not bypass it.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
