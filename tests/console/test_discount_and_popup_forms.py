"""The console's discount-code, pop-up and membership-tier forms over HTTP: create a code (and
withdraw it only after confirming), plan a pop-up at a new location and open it, create a
tier. A refused form keeps what was typed, says why beside the field and changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dropline.discounts.models import DiscountCode
from dropline.locations.models import Location
from dropline.memberships.models import MembershipTier
from dropline.popups.models import Popup, PopupStatus
from tests.builders import make_location, sign_in_console
from tests.web.support import changed_tables, snapshot

CODE = {"code": "spring10", "kind": "percentage", "percent": "10", "amount": "",
        "description": "Spring newsletter", "drop_id": "", "family": "",
        "starts_at": "2026-04-01T00:00", "ends_at": "", "max_uses": "100",
        "max_uses_per_customer": "1", "stacking": "with-member-price"}
POPUP = {"location": "", "new_code": "popup-borough", "new_name": "Borough Market pop-up",
         "new_address": "8 Southwark St", "hub": "central", "opens_at": "2026-03-10T10:00",
         "closes_at": "2026-03-15T18:00"}


@pytest.fixture
def console(client, db, clock):
    make_location(db, code="central")
    sign_in_console(client, db, clock)
    return client


def test_a_code_is_created_listed_and_withdrawn_only_after_confirming(console, db):
    created = console.post("/admin/discounts/new", data=CODE, follow_redirects=False)
    assert created.status_code == 303 and "SPRING10" in created.headers["location"]
    with db.transaction() as session:
        code = session.scalars(select(DiscountCode)).one()
        assert (code.code, code.percent, code.max_uses, code.max_uses_per_customer) == (
            "SPRING10", 10, 100, 1)
        assert code.starts_at == datetime(2026, 3, 31, 23, 0, tzinfo=UTC)  # BST midnight
    listing = console.get("/admin/discounts")
    assert "SPRING10" in listing.text and "10% off" in listing.text

    assert "Withdraw SPRING10?" in console.get(f"/admin/discounts/{code.id}/withdraw").text
    unconfirmed = console.post(f"/admin/discounts/{code.id}/withdraw", follow_redirects=False)
    assert unconfirmed.status_code == 303
    with db.transaction() as session:
        assert session.get(DiscountCode, code.id).disabled_at is None
    console.post(f"/admin/discounts/{code.id}/withdraw", data={"confirm": "yes"})
    with db.transaction() as session:
        assert session.get(DiscountCode, code.id).disabled_at is not None


@pytest.mark.parametrize(("changes", "field"), [
    ({"code": ""}, "code"),
    ({"percent": "150"}, "percent"),
    ({"kind": "fixed", "amount": "ten"}, "amount"),
    ({"max_uses": "0"}, "max_uses"),
    ({"starts_at": "soon"}, "starts_at"),
])
def test_a_refused_code_keeps_the_values_and_changes_nothing(console, db, changes, field):
    before = snapshot(db)
    page = console.post("/admin/discounts/new", data={**CODE, **changes})
    assert page.status_code == 422
    assert re.search(rf'id="f-{field}-error" role="alert"', page.text), page.text[:2000]
    assert 'value="Spring newsletter"' in page.text
    assert changed_tables(before, snapshot(db)) == []


def test_a_taken_code_is_a_conflict(console, db):
    console.post("/admin/discounts/new", data=CODE)
    before = snapshot(db)
    again = console.post("/admin/discounts/new", data={**CODE, "code": "SPRING10"})
    assert again.status_code == 409 and 'id="f-code-error"' in again.text
    assert changed_tables(before, snapshot(db)) == []


def test_a_pop_up_is_planned_at_a_new_location_and_opened(console, db):
    planned = console.post("/admin/popups/new", data=POPUP, follow_redirects=False)
    assert planned.status_code == 303, planned.text[:1000]
    with db.transaction() as session:
        popup = session.scalars(select(Popup)).one()
        place = session.get(Location, popup.location_id)
        assert (place.code, place.name, popup.status) == (
            "popup-borough", "Borough Market pop-up", PopupStatus.planned)
        assert popup.opens_at == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    page = console.get("/admin/popups")
    assert 'action="/admin/popups/popup-borough/open"' in page.text
    opened = console.post("/admin/popups/popup-borough/open", follow_redirects=False)
    assert opened.status_code == 303 and "is%20open" in opened.headers["location"]
    with db.transaction() as session:
        assert session.scalars(select(Popup.status)).one() is PopupStatus.open


def test_a_refused_pop_up_plan_keeps_the_values_and_changes_nothing(console, db):
    before = snapshot(db)
    bad_dates = console.post("/admin/popups/new", data={
        **POPUP, "closes_at": "2026-03-09T10:00"})
    assert bad_dates.status_code == 422 and 'id="f-closes_at-error"' in bad_dates.text
    assert 'value="Borough Market pop-up"' in bad_dates.text
    no_name = console.post("/admin/popups/new", data={**POPUP, "new_name": ""})
    assert no_name.status_code == 422 and 'id="f-new_name-error"' in no_name.text
    assert changed_tables(before, snapshot(db)) == []


TIER = {"name": "Inner Circle", "slug": "", "description": "First to every drop.",
        "interval": "monthly", "price": "9.50", "cap": "200", "trial_days": "0",
        "member_price_kind": "percent", "member_price_value": "10",
        "early_access_minutes": "60", "delivery_subsidy_kind": "free",
        "delivery_subsidy_amount": ""}


def test_a_membership_tier_is_created_from_the_console(console, db):
    created = console.post("/admin/memberships/tiers/new", data=TIER, follow_redirects=False)
    assert created.status_code == 303, created.text[:1000]
    with db.transaction() as session:
        tier = session.scalars(select(MembershipTier)).one()
        assert (tier.slug, tier.price_amount, tier.cap, tier.member_price_value,
                tier.early_access_minutes, tier.delivery_subsidy_kind.value) == (
            "inner-circle", 950, 200, 10, 60, "free")
    assert "Inner Circle" in console.get("/admin/memberships/tiers").text
    assert console.get(created.headers["location"]).status_code == 200


@pytest.mark.parametrize(("changes", "field"), [
    ({"price": "free"}, "price"), ({"member_price_value": "150"}, "member_price_value"),
    ({"name": ""}, "name"), ({"interval": "weekly"}, "interval")])
def test_a_refused_tier_keeps_the_values_and_changes_nothing(console, db, changes, field):
    before = snapshot(db)
    page = console.post("/admin/memberships/tiers/new", data={**TIER, **changes})
    assert page.status_code == 422 and f'id="f-{field}-error"' in page.text
    assert "First to every drop." in page.text
    assert changed_tables(before, snapshot(db)) == []


def test_the_cli_plans_a_pop_up_through_the_same_service(db, database_url, monkeypatch):
    from typer.testing import CliRunner

    from dropline.cli import app as cli_app

    make_location(db, code="central")
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    made = CliRunner().invoke(cli_app, [
        "popups", "create", "popup-borough", "--hub", "central",
        "--opens", "2026-03-10T10:00:00+00:00", "--closes", "2026-03-15T18:00:00+00:00",
        "--name", "Borough Market pop-up"])
    assert made.exit_code == 0, made.output
    with db.transaction() as session:
        popup = session.scalars(select(Popup)).one()
        assert session.get(Location, popup.location_id).name == "Borough Market pop-up"
