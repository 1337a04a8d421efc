"""Onboarding flows per tier and segment, a random holdout, steps done by the member's own
action, and the flow's measured effect on retention (issue 27)."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.errors import InvalidInput
from dropline.events.service import record_event
from dropline.memberships import jobs, onboarding
from dropline.memberships.models import Membership, OnboardingAssignment, OnboardingProgress
from dropline.memberships.onboarding_rules import (
    DEFAULT_FLOW,
    OnboardingFlow,
    choose_flow,
    flows_from_config,
    retention_effect,
)
from dropline.memberships.rules import OnboardingStep
from dropline.notifications.models import MailOutboxItem
from tests.builders import api_token, sign_in_console
from tests.memberships.support import ScriptedProvider, join, make_customer, make_tier
from tests.web.support import assert_problem

STEP = {"key": "welcome", "subject": "Welcome", "text": "Hello", "day": 0}


def _flow(name, tier=None, segment=None, holdout=0.0, steps=(STEP,)):
    return {"name": name, "tier": tier, "segment": segment, "holdout_share": holdout,
            "steps": list(steps)}


# ------------------------------------------------------------------------------ pure rules


def test_the_most_specific_matching_flow_wins():
    flows = flows_from_config([_flow("everyone"), _flow("founders", segment="founding"),
                               _flow("inner", tier="inner-circle"),
                               _flow("inner-founders", tier="inner-circle",
                                     segment="founding")])

    assert choose_flow(flows, tier="inner-circle", segment="founding").name == "inner-founders"
    assert choose_flow(flows, tier="inner-circle", segment="seasonal").name == "inner"
    assert choose_flow(flows, tier="basic", segment="founding").name == "founders"
    assert choose_flow(flows, tier="basic", segment=None).name == "everyone"
    assert choose_flow(flows_from_config([_flow("inner", tier="inner-circle")]),
                       tier="basic", segment=None) == DEFAULT_FLOW


@pytest.mark.parametrize(("flows", "says"), [
    ([_flow("a"), _flow("b")], "same tier and segment"),
    ([_flow("a", holdout=0.7)], "holdout_share must be 0 to 0.5"),
    ([_flow("a", steps=[{**STEP, "event": "order.paid"}])], "exactly one of day or event"),
    ([_flow("a", steps=[{**STEP, "channel": "sms"}])], "channel must be one of"),
    ([_flow("a", steps=[])], "has no steps"),
    ([_flow("Bad Name")], "lower-case letters"),
])
def test_a_bad_flow_is_refused_saying_what_is_wrong(flows, says):
    with pytest.raises(InvalidInput, match=says):
        flows_from_config(flows)


def test_the_effect_interval_is_newcombes_hybrid_score_interval():
    # Newcombe (1998), method 10, example (b): 56/70 vs 48/80 -> 0.2000, 95% CI 0.0524 to 0.3339.
    effect = retention_effect([True] * 56 + [False] * 14, [True] * 48 + [False] * 32,
                              z=1.959964)

    assert effect.difference == pytest.approx(0.2)
    assert effect.low == pytest.approx(0.0524, abs=1e-4)
    assert effect.high == pytest.approx(0.3339, abs=1e-4)
    empty = retention_effect([True], [])
    assert empty.difference is None and empty.flow_rate == 1.0


# ---------------------------------------------------------------------- assignment and steps


def test_new_members_are_held_out_at_random_and_held_out_members_get_nothing(db, clock):
    tier = make_tier(db, clock, slug="club")
    with db.transaction() as session:
        onboarding.set_flows(session, clock=clock, flows=[_flow("club", tier="club",
                                                                holdout=0.5)])
    provider = ScriptedProvider()
    ids = [join(db, clock, provider, customer_id=make_customer(db, clock), tier_id=tier)
           for _ in range(120)]
    source = random.Random(7)
    draws: list[float] = []

    def draw() -> float:
        draws.append(source.random())
        return draws[-1]

    with db.transaction() as session:
        onboarding.advance_all(session, clock=clock, draw=draw)
        onboarding.advance_all(session, clock=clock, draw=draw)  # drawn once per member

    with db.transaction() as session:
        rows = {a.membership_id: a for a in session.scalars(select(OnboardingAssignment))}
        welcomed = set(session.scalars(select(OnboardingProgress.membership_id)))
        mailed = {item.payload["membership_id"] for item in session.scalars(
            select(MailOutboxItem)) if item.payload.get("kind") == "onboarding:welcome"}
    assert len(draws) == 120 and sorted(rows) == sorted(ids)
    out = {m for m, a in rows.items() if a.held_out}
    assert out == {m for m, d in zip(sorted(ids), draws, strict=True) if d < 0.5}
    assert 40 <= len(out) <= 80  # Binomial(120, 0.5): within 3.5 sd
    assert {a.flow for a in rows.values()} == {"club"}
    assert welcomed == mailed == set(ids) - out


def test_an_action_step_is_done_by_the_action_and_nudges_only_those_who_did_not(db, clock):
    tier = make_tier(db, clock)
    steps = [STEP, {"key": "first-drop", "subject": "Your first drop is waiting",
                    "text": "Members buy first.", "day": 7, "completes_on": "order.paid"}]
    with db.transaction() as session:
        onboarding.set_flows(session, clock=clock, flows=[_flow("all", steps=steps)])
    provider = ScriptedProvider()
    buyer, idle = (make_customer(db, clock) for _ in range(2))
    ids = {c: join(db, clock, provider, customer_id=c, tier_id=tier) for c in (buyer, idle)}
    for day in range(10):
        if day == 3:
            with db.transaction() as session:
                record_event(session, clock=clock, type="order.paid", subject_type="order",
                             subject_id=1, customer_id=buyer)
        jobs.advance_onboarding(db, clock=clock)
        clock.advance(days=1)

    with db.transaction() as session:
        done = {(p.membership_id, p.step_key): p.due_at for p in
                session.scalars(select(OnboardingProgress))}
        nudged = [item.payload["membership_id"] for item in session.scalars(
            select(MailOutboxItem)) if item.payload.get("kind") == "onboarding:first-drop"]
        progress = onboarding.progress(session, membership=session.get(Membership, ids[idle]))
    assert (ids[buyer], "first-drop") in done and (ids[idle], "first-drop") not in done
    assert done[(ids[buyer], "first-drop")].date() == (clock.now() - timedelta(days=7)).date()
    assert nudged == [ids[idle]]  # once, and never to the member who had already bought
    assert [(p.key, p.done_at is not None) for p in progress] == [("welcome", True),
                                                                 ("first-drop", False)]


def test_the_effect_is_measured_against_the_holdout_per_flow_with_an_interval(db, clock):
    tier = make_tier(db, clock)
    provider = ScriptedProvider()
    members = [join(db, clock, provider, customer_id=make_customer(db, clock), tier_id=tier)
               for _ in range(8)]
    clock.advance(days=100)
    with db.transaction() as session:
        for index, membership_id in enumerate(members):
            out = index >= 4
            session.add(OnboardingAssignment(membership_id=membership_id, flow="default",
                                             held_out=out, assigned_at=clock.now()))
            membership = session.get(Membership, membership_id)
            if out and index != 7:  # three of four held-out members left after 40 days
                membership.ended_at = membership.started_at + timedelta(days=40)

    with db.transaction() as session:
        effects = {e.flow: e for e in onboarding.onboarding_effect(session, clock=clock)}

    thirty, sixty = effects["default"].retention[30], effects["default"].retention[60]
    assert (effects["default"].in_flow, effects["default"].held_out) == (4, 4)
    assert (thirty.flow_rate, thirty.holdout_rate, thirty.difference) == (1.0, 1.0, 0.0)
    assert (sixty.flow_rate, sixty.holdout_rate) == (1.0, 0.25)
    assert sixty.difference == pytest.approx(0.75)
    assert sixty.low < 0.75 < sixty.high and sixty.low > 0  # four a side: wide but positive
    assert "all" not in effects  # one flow: its figures are the whole story


# ---------------------------------------------------------------------------- API and CLI


def test_flows_are_replaced_through_the_api_and_a_bad_body_changes_nothing(client, db, clock):
    manage = api_token(db, clock, "memberships:manage", "memberships:read")
    good = {"flows": [_flow("founders", segment="founding", holdout=0.2,
                            steps=[STEP, {"key": "thanks", "subject": "Thank you",
                                          "text": "…", "day": 3, "channel": "account"}])]}

    saved = client.put("/api/v1/admin/memberships/onboarding/flows", json=good, headers=manage)
    bad = client.put("/api/v1/admin/memberships/onboarding/flows", headers=manage,
                     json={"flows": [_flow("x", holdout=0.9)]})
    report = client.get("/api/v1/admin/memberships/onboarding", headers=manage).json()

    assert saved.status_code == 200, saved.text
    assert_problem(bad, 422)
    assert [f["name"] for f in report["flows"]] == ["founders"]
    assert report["flows"][0]["holdout_share"] == 0.2
    assert report["flows"][0]["steps"][1]["channel"] == "account"


def test_the_cli_saves_flows_from_a_file_and_refuses_a_bad_one_in_one_line(
        db, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    good, bad = tmp_path / "flows.json", tmp_path / "bad.json"
    good.write_text(json.dumps([_flow("all", holdout=0.1)]))
    bad.write_text("[{\"name\": \"all\", ")
    runner = CliRunner()

    saved = runner.invoke(app, ["members", "onboarding-flows", str(good)])
    refused = runner.invoke(app, ["members", "onboarding-flows", str(bad)])
    shown = runner.invoke(app, ["members", "onboarding", "--json"])

    assert saved.exit_code == 0 and "1 onboarding flow(s) saved" in saved.output
    said = " ".join(refused.output.split())  # one message, however the terminal wraps it
    assert refused.exit_code == 2 and said.startswith("error:") and "is not JSON" in said
    assert "Traceback" not in refused.output
    assert json.loads(shown.output)["flows"][0]["holdout_share"] == 0.1


# ----------------------------------------------------------------------------- console


def _step_fields(i, key, subject, when, **extra):
    return {f"step-{i}-key": key, f"step-{i}-subject": subject, f"step-{i}-text": "…",
            f"step-{i}-when": when, f"step-{i}-completes_on": extra.get("completes_on", ""),
            f"step-{i}-channel": extra.get("channel", "email")}


def test_the_console_edits_flows_in_place_and_shows_a_refusal_beside_the_typed_form(
        client, db, clock):
    sign_in_console(client, db, clock)
    new = {"original": "", "name": "founders", "tier": "", "segment": "founding",
           "holdout_percent": "25", **_step_fields(0, "welcome", "Welcome, founder", "0"),
           **_step_fields(1, "first-drop", "Your first drop", "7", completes_on="order.paid")}

    added = client.post("/admin/memberships/onboarding", data=new, follow_redirects=False)
    refused = client.post("/admin/memberships/onboarding", data={
        **new, "original": "founders", "holdout_percent": "80"})
    unconfirmed = client.post("/admin/memberships/onboarding/delete",
                              data={"name": "founders"})
    page = client.get("/admin/memberships/onboarding")

    assert added.status_code == 303
    assert refused.status_code == 422
    assert "holdout_share must be 0 to 0.5" in refused.text
    assert 'value="80"' in refused.text  # the form as typed, not as stored
    assert unconfirmed.status_code == 422 and "to confirm" in unconfirmed.text
    with db.transaction() as session:
        flows = onboarding.get_flows(session)
    assert [(f.name, f.segment, f.holdout_share) for f in flows] == [("default", None, 0.0),
                                                                     ("founders", "founding",
                                                                      0.25)]
    assert flows[1].steps[1].completes_on == "order.paid" and flows[1].steps[1].day == 7
    assert page.status_code == 200 and 'id="flow-founders"' in page.text

    deleted = client.post("/admin/memberships/onboarding/delete",
                          data={"name": "founders", "confirm": "yes"}, follow_redirects=False)
    assert deleted.status_code == 303
    with db.transaction() as session:
        assert [f.name for f in onboarding.get_flows(session)] == ["default"]
