"""axe-core over every console page, in Chromium, signed in to the demo shop: each page of the
navigation registry, plus the detail and form pages listed in ``DETAIL_PAGES``, at 1280 and
375 px. Every page must have 0 violations (contrast included: the console's buttons are one
style, ``static/admin.css``) and nothing wider than the phone's screen; a screenshot of each
goes to test-artifacts/console-<page>-<width>.png.

Adding a page is one line in ``DETAIL_PAGES``: its path, with ``{product}``, ``{drop}``,
``{image}``, ``{window}`` ... standing for an id the demo shop has (``ids`` below)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from dropline.catalog.models import Product
from dropline.clock import FrozenClock
from dropline.config import MediaSettings
from dropline.db import Database
from dropline.drops.models import Drop
from dropline.fulfilment.models import DeliveryWindow
from dropline.media import flows as media_flows
from dropline.media.models import MediaOwner
from dropline.media.pages import limits_of
from dropline.memberships.models import MembershipTier
from dropline.orders.models import Order
from dropline.web.app import console_navigation, create_app
from tests.console.support import ADMIN, NOW, demo_settings, seed_demo_database
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.media.builders import image_bytes

# The console's pages that are not in the side navigation: one line each.
DETAIL_PAGES = [
    "/admin/products/new",
    "/admin/products/{product}",
    "/admin/products/{product}/media/{image}/remove",
    "/admin/drops/new",
    "/admin/drops/{drop}",
    "/admin/drops/{drop}/edit",
    "/admin/fulfilment/templates",
    "/admin/fulfilment/costs",
    "/admin/discounts/new",
    "/admin/popups/new",
    "/admin/memberships/tiers/new",
    "/admin/memberships/tiers/{tier}",
    "/admin/memberships/onboarding",
    "/admin/playbooks/cohort-map",
    "/admin/playbooks/drop-runbook",
    "/admin/playbooks/decision-tree",
    "/admin/security",
    "/admin/orders/{order}",
    "/admin/customers/{customer}",
]
WIDTHS = (1280, 375)
# The innermost elements that reach past the screen's right edge (for a failure's message).
WIDEST = """width => [...document.querySelectorAll("main *")]
  .filter(e => e.getBoundingClientRect().right > width + 1
          && ![...e.children].some(c => c.getBoundingClientRect().right > width + 1))
  .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : "")
                        + " " + Math.round(e.getBoundingClientRect().right))"""


def console_pages() -> list[str]:
    paths = [item.path for item in sorted(console_navigation(), key=lambda item: item.rank)]
    return paths + [p for p in DETAIL_PAGES if p not in paths]


def slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/admin")).strip("-") or "overview"


class Console:
    def __init__(self, server: LiveServer, ids: dict[str, int]) -> None:
        self.server, self.ids = server, ids

    def url(self, path: str) -> str:
        return self.server.url + path.format(**self.ids)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    url = seed_demo_database(tmp_path_factory, "console-axe")
    media_dir = tmp_path_factory.mktemp("console-axe-media")
    settings = demo_settings(url).model_copy(
        update={"media": MediaSettings(dir=str(media_dir))})
    db = Database(url)
    app = create_app(settings, clock=FrozenClock(NOW), db=db, run_worker=False)
    services = app.state.services
    with db.transaction() as session:
        product = session.scalars(select(Product.id).order_by(Product.id)).first()
        drop = session.scalars(select(Drop.id).order_by(Drop.starts_at.desc())).first()
        window = session.scalars(select(DeliveryWindow.id)).first()
        tier = session.scalars(select(MembershipTier.id).order_by(MembershipTier.id)).first()
        order = session.scalars(select(Order.id).order_by(Order.id.desc())).first()
        customer = session.scalars(select(Order.customer_id).where(Order.id == order)).one()
    image = media_flows.add_image(db, services.media, clock=services.clock,
                                  limits=limits_of(services), owner_kind=MediaOwner.product,
                                  owner_ref=product, data=image_bytes(), alt="The bottle").id
    server = LiveServer(app)
    server.start()
    yield Console(server, {"product": product, "drop": drop, "image": image,
                           "window": window or 0, "tier": tier, "order": order,
                           "customer": customer})
    server.stop()
    db.dispose()


@pytest.fixture(scope="module")
def owner_state(browser, console) -> dict:
    """A signed-in console session (the demo's owner account), shared by both widths."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(console.url("/admin/login"))
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(console.url("/admin"))
    state = context.storage_state()
    context.close()
    return state


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", console_pages(), ids=slug)
def test_every_console_page_has_no_axe_violations(browser, console, owner_state, path, width):
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  storage_state=owner_state)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        response = page.goto(console.url(path))
        assert response is not None and response.status == 200, (path, response.status)
        assert "/admin/login" not in page.url
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"console-{slug(path)}-{width}.png"),
                        full_page=True)
        assert_accessible(page, f"{path} at {width} px")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width + 1, (f"{path} is {overflow} px wide at {width} px: "
                                       f"{page.evaluate(WIDEST, width)}")
        assert not errors, errors
    finally:
        context.close()
