"""`dropline playbook ...` on the demo shop: each playbook names the shop's real numbers
(checked against the database here), writes Markdown and HTML, and fails in one line when
there is nothing to plan."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.db import Database
from dropline.drops import service as drops
from dropline.drops.models import Drop
from dropline.fulfilment.models import FulfilmentDecisionRow, FulfilmentRuleRow
from dropline.memberships.models import Membership, MembershipTier
from dropline.memberships.rules import LIVE_STATUSES
from tests.console.support import NOW, seed_demo_database

runner = CliRunner()
AS_OF = NOW.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return seed_demo_database(tmp_path_factory, "playbooks")


@pytest.fixture(scope="module")
def demo_db(demo_url: str):
    db = Database(demo_url)
    yield db
    db.dispose()


def _run(url: str, *args: str, as_of: str = AS_OF):
    result = runner.invoke(app, ["playbook", *args, "--as-of", as_of],
                           env={"DROPLINE_DATABASE_URL": url, "COLUMNS": "200"})
    return result


@pytest.mark.parametrize("command", ["cohort-map", "drop-runbook", "decision-tree"])
def test_every_playbook_command_has_help_with_an_example(command):
    result = runner.invoke(app, ["playbook", command, "--help"], terminal_width=200)

    assert result.exit_code == 0
    assert f"Example: dropline playbook {command}" in result.output


def test_cohort_map_counts_the_live_members_of_each_segment(demo_url, demo_db):
    with demo_db.transaction() as session:
        live = Counter(seg or "unclassified" for seg in session.scalars(
            select(Membership.segment).where(Membership.status.in_(LIVE_STATUSES))))
    result = _run(demo_url, "cohort-map")

    assert result.exit_code == 0, result.output
    assert {"founding", "utility", "seasonal"} <= set(live), live  # the demo has every segment
    for segment, count in live.items():
        assert re.search(rf"^\| {segment} \| {count} \|", result.stdout, re.MULTILINE), segment
        if segment != "unclassified":  # each segment has its retention action
            assert f"{segment} ({count} members)" in result.stdout
    assert f"{sum(live.values())} live members" in result.stdout
    assert "## Onboarding progress" in result.stdout


def test_drop_runbook_is_for_the_next_drop_with_its_cap_and_tier_leads(demo_url, demo_db):
    with demo_db.transaction() as session:
        drop = session.scalar(select(Drop).where(Drop.starts_at > NOW).order_by(Drop.starts_at))
        cap = drops.cap_of(drop, drops.drop_variants(session, drop.id))
        name, slug, lead = drop.name, drop.slug, drop.early_access_minutes
        tiers = session.execute(select(MembershipTier.name, MembershipTier.early_access_minutes)
                                .where(MembershipTier.active)).all()
    result = _run(demo_url, "drop-runbook")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"# Micro-drop runbook: {name}" in out
    assert f"Current cap: {cap} units" in out and f"cap {cap} units" in out
    assert f"dropline drops prewarm {slug}" in out
    for tier, minutes in tiers:  # each tier's lead, capped by the drop's own early access
        assert re.search(rf"^\| {re.escape(tier)} \| {min(minutes, lead)} \|", out, re.MULTILINE), tier
    suggested = re.search(r"suggests (\d+) units", out)
    assert suggested and int(suggested.group(1)) > 0
    assert "## Fulfilment plan" in out and "## Post-drop review" in out


def test_decision_tree_is_the_configured_rules_with_their_decision_counts(demo_url, demo_db):
    with demo_db.transaction() as session:
        rules = session.execute(select(FulfilmentRuleRow.name, FulfilmentRuleRow.max_premium_amount)
                                .order_by(FulfilmentRuleRow.position)).all()
        used = dict(session.execute(select(FulfilmentDecisionRow.rule, func.count())
                                    .group_by(FulfilmentDecisionRow.rule)).all())
    result = _run(demo_url, "decision-tree")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{len(rules)} rules configured" in out
    assert f"{sum(used.values())} orders decided so far" in out and used
    for number, (name, premium) in enumerate(rules, 2):  # step 1 lists the options
        assert f"{number}. {name}:" in out
        assert f"(decided {used.get(name, 0)} orders so far)" in out
        if premium is not None:
            assert f"at most £{premium / 100:.2f} dearer than central" in out


def test_html_output_goes_to_a_file_with_heading_and_picture(demo_url, tmp_path):
    target = tmp_path / "tree.html"
    result = _run(demo_url, "decision-tree", "--format", "html", "--out", str(target))

    assert result.exit_code == 0, result.output
    html = target.read_text()
    assert "<h1>Fulfilment decision tree</h1>" in html and "<svg" in html
    assert "<script" not in html and "http" not in html.split("<svg", 1)[0].lower()


def test_runbook_with_no_drop_ahead_fails_in_one_line(demo_url):
    result = _run(demo_url, "drop-runbook", as_of="2030-01-01T00:00")

    assert result.exit_code == 2
    assert "no drop is scheduled" in result.output and "Traceback" not in result.output


def test_demo_deliveries_are_decided_booked_and_routed_like_checkout_does(demo_db):
    """The demo's day of deliveries went through the real decision: every booking's order has
    a recorded hub-window decision for that very window, and routed windows carry every stop."""
    from dropline.fulfilment.models import DeliveryWindow, RoutePlanRow, RouteRow, RouteStopRow
    from dropline.fulfilment.models import WindowBooking as Booking

    with demo_db.transaction() as session:
        bookings = session.execute(select(Booking.id, Booking.order_id, Booking.window_id)).all()
        decisions = {row.order_id: row for row in session.scalars(select(FulfilmentDecisionRow))}
        rules = set(session.scalars(select(FulfilmentRuleRow.name)))
        windows = {w.id: w for w in session.scalars(select(DeliveryWindow))}
        plans = list(session.scalars(select(RoutePlanRow)))
        routed = {plan.window_id for plan in plans}
        unassigned = {b for plan in plans for b in plan.unassigned_booking_ids}
        stops = set(session.scalars(select(RouteStopRow.booking_id).join(
            RouteRow, RouteRow.id == RouteStopRow.route_id)))
    assert len(bookings) >= 8 and routed
    for booking_id, order_id, window_id in bookings:
        decision = decisions[order_id]
        assert (decision.path, decision.window_id) == ("hub-window", window_id)
        assert windows[window_id].starts_at.date() in (NOW.date(), (NOW + timedelta(days=1)).date())
        if window_id in routed:
            assert booking_id in stops or booking_id in unassigned
    assert {d.rule for d in decisions.values()} & rules  # the brand's own rules decided some


def test_demo_deliveries_addresses_postcodes_and_coordinates_agree(demo_db):
    """Every demo stop's postcode is a London district near its hub, and the door is within
    half a kilometre of that district's centre (no Cardiff postcode on a Clapham bike)."""
    from dropline.adapters.geocoding import LondonDistrictGeocoder
    from dropline.fulfilment.models import DeliveryWindow
    from dropline.fulfilment.models import WindowBooking as Booking
    from dropline.fulfilment.rules import GeoPoint
    from dropline.locations.models import Location
    from dropline.orders.models import Order

    geocoder = LondonDistrictGeocoder()
    with demo_db.transaction() as session:
        rows = session.execute(
            select(Booking, Location, Order.shipping_address)
            .join(DeliveryWindow, DeliveryWindow.id == Booking.window_id)
            .join(Location, Location.id == DeliveryWindow.location_id)
            .join(Order, Order.id == Booking.order_id)).all()
    assert rows
    for booking, hub, address in rows:
        door = GeoPoint(booking.latitude, booking.longitude)
        district = geocoder.locate(booking.label)
        assert district is not None, booking.label
        assert door.metres_to(district) <= 510, (booking.label, hub.code)
        assert door.metres_to(GeoPoint(hub.latitude, hub.longitude)) <= 3200
        assert (address["postcode"], address["city"]) == (booking.label, "London")
        if "latitude" in address:  # the batch decider books by postcode alone
            assert (address["latitude"], address["longitude"]) == (door.latitude,
                                                                   door.longitude)
