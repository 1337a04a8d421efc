"""The demo's membership programme, and `dropline members` on it."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.demo import seed_demo
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipTier,
)
from dropline.memberships.rules import LIVE_STATUSES, EndReason, MembershipStatus

runner = CliRunner()


def test_the_demo_has_members_in_every_segment_and_a_year_of_renewals(db, settings, clock,
                                                                       monkeypatch):
    summary = seed_demo(db, settings=settings, clock=clock, customers=160, seed=7)

    with db.transaction() as s:
        members = s.scalars(select(Membership)).all()
        segments = Counter(m.segment for m in members)
        assert set(segments) == {"founding", "utility", "seasonal"}
        statuses = Counter(m.status for m in members)
        assert {MembershipStatus.active, MembershipStatus.canceled} <= set(statuses)
        assert Counter(m.end_reason for m in members)[EndReason.voluntary] >= 1
        first, last = s.execute(select(func.min(MembershipCharge.period_start),
                                       func.max(MembershipCharge.period_start))).one()
        assert (last - first).days >= 300
        renewals = s.scalar(select(func.count()).select_from(MembershipCharge).where(
            MembershipCharge.kind == ChargeKind.renewal,
            MembershipCharge.status == ChargeStatus.succeeded))
        assert renewals > 50
        for tier in s.scalars(select(MembershipTier)):  # spots held match live members
            assert tier.live_count == sum(1 for m in members if m.tier_id == tier.id
                                          and m.status in LIVE_STATUSES)
            assert tier.cap is None or tier.live_count <= tier.cap
    assert "founding" in summary["members"] and "utility" in summary["members"]

    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    result = runner.invoke(app, ["members", "cohort-map"], terminal_width=120)
    assert result.exit_code == 0, result.output
    for segment in ("founding", "utility", "seasonal"):
        assert segment in result.output
    assert "Membership cohort map" in result.output and "£" in result.output


COMMANDS = ["tiers", "create-tier", "list", "metrics", "cohort-map", "segment-rules",
            "segments", "renew", "onboarding", "poll", "poll-results"]


def test_every_members_command_documents_itself_with_an_example():
    for command in COMMANDS:
        result = runner.invoke(app, ["members", command, "--help"], terminal_width=200)
        assert result.exit_code == 0, command
        assert "Example: dropline members" in result.output, command


def test_members_cli_creates_tiers_changes_rules_and_refuses_readably(db, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)

    created = runner.invoke(app, ["members", "create-tier", "inner-circle", "--name",
                                  "Inner circle", "--price", "1500", "--cap", "200",
                                  "--member-percent", "10", "--early-access", "60"])
    duplicate = runner.invoke(app, ["members", "create-tier", "inner-circle", "--name", "X",
                                    "--price", "1"])
    listed = runner.invoke(app, ["members", "tiers"], terminal_width=200)
    changed = runner.invoke(app, ["members", "segment-rules", "--set", "utility_min_orders=5",
                                  "--set", "consumable_families=refills,candles"],
                            terminal_width=200)
    bad = runner.invoke(app, ["members", "segment-rules", "--set", "utility_min_orders"])
    unknown = runner.invoke(app, ["members", "poll-results", "42"])

    assert created.exit_code == 0 and "£15.00/monthly" in created.output
    assert duplicate.exit_code == 2 and "exists" in duplicate.output
    assert "200 of 200" in listed.output and "10% off" in listed.output
    assert changed.exit_code == 0 and "utility_min_orders" in changed.output
    assert "['refills', 'candles']" in changed.output
    assert bad.exit_code == 2 and "key=value" in bad.output
    assert unknown.exit_code == 2 and "poll 42 not found" in unknown.output
    for result in (duplicate, bad, unknown):
        assert "Traceback" not in result.output
