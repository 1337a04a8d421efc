"""The storefront in real Chromium."""

from dropline.catalog.models import ConditionGrade
from tests.builders import make_location, make_product


def test_shopper_browses_from_home_to_a_graded_product(page, live_server, db, clock):
    make_location(db)
    make_product(db, clock, name="Neroli Tide", price=7400, stock=4)
    make_product(db, clock, name="Atomiser Stone", price=2900, family="diffusers",
                 grade=ConditionGrade.refurbished_b, disclosure="Hairline glaze crack, sealed.")

    page.goto(live_server.url + "/")
    page.get_by_role("link", name="diffusers").first.click()
    page.get_by_text("Atomiser Stone").click()

    assert page.url.endswith("/products/atomiser-stone")
    assert page.get_by_role("heading", name="Atomiser Stone").is_visible()
    assert page.get_by_text("Hairline glaze crack, sealed.").is_visible()
    assert page.get_by_text("£29.00").is_visible()
