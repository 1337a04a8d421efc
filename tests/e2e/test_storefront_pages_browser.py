"""Every storefront page of the demo shop (pictures, stories, members, orders) in real Chromium
at 375 and 1280 px: axe-core finds no violation, no page is wider than the screen, and each is
saved as test-artifacts/storefront-<page>-<width>.png to be looked at."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from dropline.catalog.models import Product, ProductFamily
from dropline.customers.models import Customer
from dropline.demo.seed import seed_demo
from dropline.demo.shoppers import CUSTOMER_PASSWORD
from dropline.drops import service as drops
from dropline.drops.models import Drop, HoldSource
from dropline.drops.rules import DropState
from dropline.memberships.models import Membership
from dropline.orders.models import Order
from dropline.web.app import create_app
from tests.drops.builders import make_drop, make_shopper
from tests.e2e.axe import violations
from tests.e2e.conftest import ARTIFACTS, LiveServer

WIDTHS = (375, 1280)


@dataclass(frozen=True)
class Shop:
    url: str
    product: str
    family: str
    drops: dict[str, int]  # state -> a drop in it
    member_email: str
    order_id: int


def _drop_in(session, clock, state: DropState) -> int | None:
    for drop in session.scalars(select(Drop).order_by(Drop.id)):
        if drops.state_of(session, clock=clock, drop=drop) is state:
            return drop.id
    return None


@pytest.fixture
def shop(db, clock, settings) -> Iterator[Shop]:
    app = create_app(settings, clock=clock, db=db, run_worker=False)
    seed_demo(db, settings=settings, clock=clock, customers=40, seed=7,
              media=app.state.services.media)
    # The demo has past drops and one scheduled; the other states are made here.
    early = make_drop(db, clock, cap=5, queue=True, starts_in=30, early_access_minutes=60,
                      with_location=False).drop_id
    live = make_drop(db, clock, cap=5, starts_in=-5, with_location=False).drop_id
    gone = make_drop(db, clock, cap=1, starts_in=-5, with_location=False)
    buyer = make_shopper(db, clock).customer_id
    with db.transaction() as session:
        drops.create_hold(session, clock=clock, drop=drops.get_drop(session, gone.drop_id),
                          customer_id=buyer,
                          lines=[drops.HoldLine(gone.variant_ids[0], 1)],
                          source=HoldSource.direct)
    with db.transaction() as session:
        states = {"scheduled": _drop_in(session, clock, DropState.scheduled),
                  "ended": _drop_in(session, clock, DropState.ended),
                  "early-access": early, "live": live, "sold-out": gone.drop_id}
        member = session.execute(
            select(Customer.email, Order.id).join(Membership, Membership.customer_id == Customer.id)
            .join(Order, Order.customer_id == Customer.id)
            .where(Membership.live_customer_id.is_not(None)).order_by(Order.id.desc())
        ).first()
        product = session.scalar(select(Product.slug).where(Product.slug == "fig-eau-de-parfum"))
        family = session.scalar(select(ProductFamily.slug).order_by(ProductFamily.id))
    assert all(states.values()) and member and product and family
    server = LiveServer(app)
    server.start()
    yield Shop(server.url, product, family, states, member[0], member[1])
    server.stop()


def _anonymous_pages(shop: Shop) -> list[tuple[str, str]]:
    return [
        ("home", "/"), ("family", f"/?family={shop.family}"),
        ("product", f"/products/{shop.product}"),
        *[(f"drop-{state}", f"/drops/{drop}") for state, drop in shop.drops.items()],
        ("sign-in", "/sign-in"), ("sign-up", "/sign-up"),
        ("forgot-password", "/forgot-password"), ("membership-tiers", "/membership"),
        ("stores", "/stores"), ("search", "/search?q=fig"), ("offline", "/offline"),
        ("returns-policy", "/returns-policy"), ("not-found", "/products/no-such-scent"),
    ]


def _member_pages(shop: Shop) -> list[tuple[str, str]]:
    return [
        ("cart", "/cart"), ("checkout", "/checkout?postcode=E8"),
        ("confirmation", f"/orders/{shop.order_id}?placed=1"),
        ("order", f"/orders/{shop.order_id}"), ("account", "/account"),
        ("account-password", "/account/password"), ("membership", "/membership"),
        ("membership-change", "/membership/change"),
        ("drop-me", f"/drops/{shop.drops['early-access']}/me"),
    ]


def _visit(page, url: str, name: str, width: int, found: dict[str, list[str]]) -> None:
    page.goto(url)
    # A page under an A/B test may reload itself once into the visitor's variant.
    page.wait_for_load_state("networkidle")
    wide = page.evaluate("document.documentElement.scrollWidth")
    if wide > width:
        found.setdefault(f"{name}-{width}", []).append(f"page is {wide} px wide")
    for violation in violations(page):
        targets = ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        found.setdefault(f"{name}-{width}", []).append(
            f"{violation['id']} ({violation['impact']}): {violation['help']} -- {targets}")
    page.screenshot(path=str(ARTIFACTS / f"storefront-{name}-{width}.png"), full_page=True)


def test_every_storefront_page_passes_axe_and_fits_at_375_and_1280_px(browser, shop):
    ARTIFACTS.mkdir(exist_ok=True)
    found: dict[str, list[str]] = {}
    visited = 0
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900},
                                      bypass_csp=True)
        page = context.new_page()
        for name, path in _anonymous_pages(shop):
            _visit(page, shop.url + path, name, width, found)
            visited += 1
        page.goto(f"{shop.url}/sign-in?next=/products/{shop.product}")
        page.get_by_label("Email").fill(shop.member_email)
        page.get_by_label("Password").fill(CUSTOMER_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**/products/{shop.product}")
        page.locator("form.buy button").first.click()
        page.wait_for_url("**/cart")
        for name, path in _member_pages(shop):
            _visit(page, shop.url + path, name, width, found)
            visited += 1
        context.close()

    assert visited == 2 * (len(_anonymous_pages(shop)) + len(_member_pages(shop)))
    assert not found, "\n".join(f"{page}: {line}" for page, lines in sorted(found.items())
                                for line in lines)
