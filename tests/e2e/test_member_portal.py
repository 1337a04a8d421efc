"""The member portal in real Chromium: sign in, join, see the price of an upgrade, upgrade,
pause, resume, cancel and keep, vote; and the same forms with JavaScript switched off."""

from __future__ import annotations

from datetime import timedelta

from dropline.customers.service import register_customer
from dropline.memberships import polls
from dropline.memberships.rules import MemberPriceKind, SubsidyKind
from tests.builders import PASSWORD
from tests.memberships.support import make_tier


def _member(db, clock, email: str) -> int:
    with db.transaction() as session:
        return register_customer(session, clock=clock, email=email, password=PASSWORD).id


def _sign_in(page, url: str, email: str) -> None:
    page.goto(url + "/membership")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _fill_card(scope, number: str = "4242 4242 4242 4242") -> None:
    scope.get_by_label("Card number").fill(number)
    scope.get_by_label("Month").fill("12")
    scope.get_by_label("Year").fill("2030")
    scope.get_by_label("CVC").fill("123")


def test_a_member_joins_upgrades_pauses_resumes_cancels_keeps_and_votes(page, live_server,
                                                                         db, clock):
    friends = make_tier(db, clock, slug="friends", price=900,
                        member_price_kind=MemberPriceKind.percent, member_price_value=5)
    inner = make_tier(db, clock, slug="inner-circle", price=2500, early_access_minutes=120,
                      delivery_subsidy_kind=SubsidyKind.free)
    with db.transaction() as session:
        polls.create_poll(session, clock=clock, question="Which scent next?",
                          options=["Vetiver", "Yuzu"], tier_id=inner, segment=None,
                          closes_at=clock.now() + timedelta(days=30))
    _member(db, clock, "ada@example.com")

    _sign_in(page, live_server.url, "ada@example.com")
    friends_tile = page.locator("li.tile", has_text="Friends")
    _fill_card(friends_tile)
    friends_tile.get_by_role("button", name="Join Friends").click()
    # The page tokenises the card with the provider first, then submits the reference.
    page.get_by_text("Welcome in: your membership has started.").wait_for()
    assert page.get_by_test_id("status").inner_text() == "active"
    assert page.get_by_text("5% off member prices").is_visible()
    assert page.get_by_text("ending 4242").is_visible()

    clock.advance(days=10)  # 21 of 31 days left
    page.get_by_label("Change tier").select_option(label="Inner Circle (£25.00 monthly)")
    page.get_by_role("button", name="See the price").click()
    # 2500 x 21/31 = 1693.55 -> 1694, less 900 x 21/31 = 609.68 -> 610: 1084 now
    assert page.get_by_test_id("net").inner_text() == "£10.84"
    page.get_by_role("button", name="Confirm the change").click()
    assert page.get_by_text("Your tier has changed.").is_visible()
    assert page.get_by_text("Early access to drops, 120 minutes").is_visible()

    page.get_by_role("button", name="Pause membership").click()
    assert page.get_by_test_id("status").inner_text() == "paused"
    page.get_by_role("button", name="Resume membership").click()
    assert page.get_by_test_id("status").inner_text() == "active"
    page.get_by_role("button", name="Cancel at period end").click()
    assert page.get_by_text("Your membership will end at the end of this period.").is_visible()
    page.get_by_role("button", name="Keep my membership").click()
    assert page.get_by_text("Your membership will carry on.").is_visible()

    page.get_by_label("Yuzu").check()
    page.get_by_role("button", name="Vote").click()
    assert page.get_by_text("Thank you: your vote is in.").is_visible()
    assert page.get_by_text("You voted.").is_visible()


def test_the_portal_works_with_javascript_switched_off(browser, live_server, db, clock):
    """Without JavaScript the card is given on the provider's hosted card page: the join form
    goes there, the page comes back with the card ready, and the shopper confirms."""
    make_tier(db, clock, slug="friends", price=900)
    _member(db, clock, "grace@example.com")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, "grace@example.com")
        assert not page.get_by_label("Card number").is_visible()  # given at the provider's
        page.get_by_role("button", name="Join Friends").click()
        page.get_by_role("heading", name="Pay by card").wait_for()
        _fill_card(page, "4000 0000 0000 0003")  # fails the Luhn check: said beside it
        page.get_by_role("button", name="Continue to").click()
        assert page.get_by_role("alert").inner_text() == "the card number is not valid"
        _fill_card(page, "4000 0000 0000 0002")  # declined when charged
        page.get_by_role("button", name="Continue to").click()
        assert page.get_by_text("Card ending 0002, given to the payment provider.").is_visible()
        page.get_by_role("button", name="Join Friends").click()
        assert page.get_by_role("alert").inner_text().startswith("the card was declined")

        page.get_by_role("button", name="Join Friends").click()
        _fill_card(page)
        page.get_by_role("button", name="Continue to").click()
        page.get_by_role("button", name="Join Friends").click()
        assert page.get_by_test_id("status").inner_text() == "active"
        assert page.get_by_text("ending 4242").is_visible()
        page.get_by_role("button", name="Cancel at period end").click()
        assert page.get_by_text("Ends", exact=True).is_visible()
    finally:
        context.close()
