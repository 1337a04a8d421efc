"""The membership API, the perk interface the drop engine uses, and the brand's figures."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from dropline.events.service import record_event
from dropline.memberships import jobs, perks
from dropline.memberships.models import Membership, OnboardingProgress
from dropline.memberships.perks import DeliverySubsidy
from dropline.memberships.rules import MemberPriceKind, MembershipStatus, SubsidyKind
from tests.builders import DECLINED_PM, GOOD_CARD, GOOD_PM, api_token, sign_up
from tests.memberships.support import CONFIG, make_tier
from tests.web.support import assert_problem, changed_tables, snapshot

DECLINED_CARD = DECLINED_PM


def join(client, tier_id, card=GOOD_PM, key=None):
    return client.post("/api/v1/memberships", json={"tier_id": tier_id, "payment_method": card},
                       headers={"Idempotency-Key": key or str(uuid.uuid4())})


@pytest.fixture
def inner(db, clock) -> int:
    return make_tier(db, clock, slug="inner-circle", price=2500, cap=2,
                     member_price_kind=MemberPriceKind.percent, member_price_value=10,
                     early_access_minutes=120, delivery_subsidy_kind=SubsidyKind.free)


def test_a_customer_joins_by_api_and_a_replay_returns_the_same_membership(client, inner):
    sign_up(client)

    first = join(client, inner, key="join-1")
    again = join(client, inner, key="join-1")

    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["status"], body["tier_slug"], body["card_last4"]) == ("active", "inner-circle",
                                                                        "4242")
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == body
    assert client.get("/api/v1/memberships/current").json()["id"] == body["id"]
    tiers = client.get("/api/v1/membership-tiers").json()
    assert [(t["slug"], t["spots_left"]) for t in tiers] == [("inner-circle", 1)]


def test_a_declined_card_is_402_and_leaves_no_live_membership(client, db, inner):
    sign_up(client)

    response = join(client, inner, card=DECLINED_CARD)

    assert assert_problem(response, 402)["decline_code"] == "card_declined"
    assert_problem(client.get("/api/v1/memberships/current"), 404)


def test_a_full_tier_is_409_and_the_waitlist_takes_the_customer(client, db, clock, inner):
    from tests.web.support import second_client

    for _ in range(2):
        other = second_client(client)
        sign_up(other)
        assert join(other, inner).status_code == 201
    sign_up(client)

    full = join(client, inner)
    waiting = client.post(f"/api/v1/membership-tiers/{inner}/waitlist")

    assert assert_problem(full, 409)["type"].endswith("/out-of-stock")
    assert waiting.status_code == 201 and waiting.json()["position"] == 1


def test_member_actions_by_api_pause_resume_cancel_keep_and_preview(client, db, clock, inner):
    plus = make_tier(db, clock, slug="plus", price=4000)
    sign_up(client)
    join(client, inner)
    clock.advance(days=10)

    preview = client.get(f"/api/v1/memberships/current/change-preview?tier_id={plus}")
    paused = client.post("/api/v1/memberships/current/pause", json={})
    again = client.post("/api/v1/memberships/current/pause", json={})
    resumed = client.post("/api/v1/memberships/current/resume")
    cancelled = client.post("/api/v1/memberships/current/cancel")
    kept = client.post("/api/v1/memberships/current/keep")

    # 21 of 31 days left: credit 2500 x 21/31 = 1693.5 -> 1694; charge 4000 x 21/31 -> 2710
    assert preview.json() | {} == {"from_tier": "inner-circle", "to_tier": "plus",
                                   "credit_amount": 1694, "charge_amount": 2710,
                                   "net_amount": 1016, "currency": "GBP",
                                   "restarts_period": False}
    assert paused.json()["status"] == "paused"
    assert_problem(again, 409)
    assert resumed.json()["status"] == "active"
    assert cancelled.json()["cancel_at_period_end"] is True
    assert kept.json()["cancel_at_period_end"] is False

    upgraded = client.post("/api/v1/memberships/current/tier", json={"tier_id": plus},
                           headers={"Idempotency-Key": "up-1"})
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["tier_slug"] == "plus"


def test_bad_membership_requests_are_4xx_problems_and_change_nothing(client, db, clock, inner):
    sign_up(client)
    join(client, inner)
    before = snapshot(db)

    for response in (
        client.post("/api/v1/memberships", json={"tier_id": 0, "payment_method": GOOD_PM},
                    headers={"Idempotency-Key": "bad-1"}),
        client.post("/api/v1/memberships", content=b"{not json",
                    headers={"Idempotency-Key": "bad-2", "content-type": "application/json"}),
        client.post("/api/v1/memberships", json={"tier_id": inner, "payment_method": GOOD_PM,
                                                 "extra": 1},
                    headers={"Idempotency-Key": "bad-3"}),
        client.post("/api/v1/memberships", json={"tier_id": 2**60, "payment_method": GOOD_PM},
                    headers={"Idempotency-Key": "bad-4"}),
        client.post("/api/v1/memberships/current/pause",
                    json={"resume_at": "2020-01-01T00:00:00Z"}),
        client.post("/api/v1/memberships/current/pause", json={"resume_at": "tomorrow"}),
        client.get("/api/v1/memberships/current/change-preview?tier_id=-1"),
        client.post("/api/v1/memberships/current/tier", json={"tier_id": inner},
                    headers={"Idempotency-Key": "same-tier"}),
        client.put("/api/v1/memberships/current/payment-method",
                   json={"card": {**GOOD_CARD, "number": "4242424242424241"}}),
        client.put("/api/v1/memberships/current/payment-method",
                   json={"payment_method": "pm_never_issued"}),
        client.post("/api/v1/polls/99/votes", json={"option": 0}),
        client.post("/api/v1/polls/1/votes", json={"option": "\x00"}),
    ):
        assert_problem(response)
    after = snapshot(db)
    # Refusals stored under an Idempotency-Key are the only rows allowed to appear.
    assert changed_tables(before, after) in ([], ["idempotency_records"])


def test_admin_endpoints_need_the_memberships_scopes(client, db, clock):
    body = {"slug": "founders", "name": "Founders", "interval": "annual",
            "price_amount": 36000, "currency": "GBP", "cap": 50}
    reader = api_token(db, clock, "memberships:read")
    manager = api_token(db, clock, "memberships:manage")

    assert_problem(client.post("/api/v1/admin/membership-tiers", json=body), 401)
    assert_problem(client.post("/api/v1/admin/membership-tiers", json=body, headers=reader), 403)
    created = client.post("/api/v1/admin/membership-tiers", json=body, headers=manager)
    assert created.status_code == 201 and created.json()["spots_left"] == 50
    assert_problem(client.post("/api/v1/admin/membership-tiers", json=body, headers=manager), 409)
    assert_problem(client.post("/api/v1/admin/membership-tiers",
                               json={**body, "slug": "x", "member_price_kind": "percent",
                                     "member_price_value": 150}, headers=manager), 422)
    assert client.get("/api/v1/admin/membership-tiers", headers=reader).json()[0]["slug"] == \
        "founders"


def test_metrics_count_mrr_per_tier_churn_by_cause_and_trial_conversion(client, db, clock):
    monthly = make_tier(db, clock, slug="monthly", price=1000, trial_days=7)
    annual = make_tier(db, clock, slug="annual", price=12006,
                       interval=__import__("dropline.memberships.rules",
                                           fromlist=["Interval"]).Interval.annual)
    from tests.memberships.support import ScriptedProvider, make_customer
    from tests.memberships.support import join as join_flow
    provider = ScriptedProvider()
    a = join_flow(db, clock, provider, customer_id=make_customer(db, clock), tier_id=monthly)
    join_flow(db, clock, provider, customer_id=make_customer(db, clock), tier_id=monthly)
    join_flow(db, clock, provider, customer_id=make_customer(db, clock), tier_id=annual)
    clock.advance(days=7)  # both trials end: one converts, one is declined into dunning
    provider.then(["ok", "card_declined", "card_declined", "card_declined", "card_declined",
                   "card_declined"])
    for hours in range(0, 100, 12):
        jobs.renew_due(db, clock=clock, config=CONFIG, provider=provider)
        jobs.lapse_overdue(db, clock=clock)
        clock.advance(hours=12)
    headers = api_token(db, clock, "memberships:read")

    response = client.get("/api/v1/admin/memberships/metrics", headers=headers)

    m = response.json()
    assert m["mrr"] == 1000 + 1001  # a twelfth of 12006, rounded half up
    assert [(t["slug"], t["live"], t["paying"]) for t in m["tiers"]] == [
        ("monthly", 1, 1), ("annual", 1, 1)]
    assert (m["churned_voluntary"], m["churned_failed_payment"]) == (0, 1)
    assert (m["trials_ended"], m["trials_converted"], m["trial_conversion"]) == (2, 1, 0.5)
    with db.transaction() as session:
        assert session.get(Membership, a).status in (MembershipStatus.active,
                                                     MembershipStatus.lapsed)


# ------------------------------------------------------------------------------- perks


def test_perks_follow_the_members_tier_and_status(db, clock, inner):
    from tests.memberships.support import ScriptedProvider, make_customer
    from tests.memberships.support import join as join_flow

    member, stranger = make_customer(db, clock), make_customer(db, clock)
    join_flow(db, clock, ScriptedProvider(), customer_id=member, tier_id=inner)
    now = clock.now()

    with db.transaction() as session:
        assert perks.active_tier(session, customer_id=member, at=now).slug == "inner-circle"
        assert perks.early_access_minutes(session, customer_id=member, at=now) == 120
        assert perks.early_access_minutes(session, customer_id=stranger, at=now) == 0
        assert perks.member_price(session, customer_id=member, variant_id=1, base_amount=4250,
                                  at=now) == 3825
        assert perks.member_price(session, customer_id=stranger, variant_id=1,
                                  base_amount=4250, at=now) == 4250
        subsidy = perks.delivery_subsidy(session, customer_id=member, at=now)
        assert subsidy == DeliverySubsidy(SubsidyKind.free, 0) and subsidy.apply(495) == 0
        assert perks.delivery_subsidy(session, customer_id=stranger, at=now).apply(495) == 495
        # Before the membership began there were no perks.
        assert perks.active_tier(session, customer_id=member,
                                 at=now - timedelta(minutes=1)) is None


def test_a_discounted_delivery_subsidy_takes_its_amount_off():
    assert DeliverySubsidy(SubsidyKind.discount, 200).apply(495) == 295
    assert DeliverySubsidy(SubsidyKind.discount, 600).apply(495) == 0


# ------------------------------------------------------------- segments, cohorts, polls


def test_segment_rules_are_visible_changeable_and_used_by_the_recompute(client, db, clock,
                                                                        inner):
    reader = api_token(db, clock, "memberships:read")
    manager = api_token(db, clock, "memberships:manage")
    sign_up(client)
    join(client, inner)

    shown = client.get("/api/v1/admin/memberships/segment-rules", headers=reader).json()
    changed = client.put("/api/v1/admin/memberships/segment-rules",
                         json={"founding_min_monthly_spend": 2000}, headers=manager)
    bad = client.put("/api/v1/admin/memberships/segment-rules",
                     json={"utility_min_consumable_share": 3}, headers=manager)
    recomputed = client.post("/api/v1/admin/memberships/segments/recompute", headers=manager)
    members = client.get("/api/v1/admin/memberships", headers=reader).json()

    assert shown["rules"]["founding_min_monthly_spend"] == 3000
    assert "founding" in shown["explanation"]
    assert changed.json()["rules"]["founding_min_monthly_spend"] == 2000
    assert_problem(bad, 422)
    assert recomputed.json() == {"classified": 1}
    # 2500 paid in its first month: founding at the lowered threshold, not at the default.
    assert members[0]["segment"] == "founding" and "2000" in members[0]["segment_reason"]


def test_cohort_map_api_groups_members_by_segment_and_join_month(client, db, clock, inner):
    manager = api_token(db, clock, "memberships:manage", "memberships:read")
    sign_up(client)
    join(client, inner)
    client.post("/api/v1/admin/memberships/segments/recompute", headers=manager)

    cells = client.get("/api/v1/admin/memberships/cohort-map", headers=manager).json()

    # 2500 a month is under the default founding threshold (3000): seasonal.
    assert cells == [{"segment": "seasonal", "join_month": "2026-03", "members": 1,
                      "active": 1, "revenue": 2500,
                      "retention": {"m1": None, "m3": None, "m6": None}}]


def test_founding_members_vote_once_and_the_brand_sees_the_results(client, db, clock, inner):
    manager = api_token(db, clock, "memberships:manage", "memberships:read")
    sign_up(client)
    join(client, inner)
    client.put("/api/v1/admin/memberships/segment-rules", headers=manager,
               json={"founding_min_monthly_spend": 2500})
    client.post("/api/v1/admin/memberships/segments/recompute", headers=manager)
    poll = client.post("/api/v1/admin/polls", headers=manager, json={
        "question": "Which scent next?", "options": ["Vetiver", "Yuzu", "Wet stone"],
        "segment": "founding", "closes_at": (clock.now() + timedelta(days=7)).isoformat()})
    poll_id = poll.json()["id"]

    listed = client.get("/api/v1/memberships/current/polls").json()
    first = client.post(f"/api/v1/polls/{poll_id}/votes", json={"option": 1})
    second = client.post(f"/api/v1/polls/{poll_id}/votes", json={"option": 2})
    out_of_range = client.post(f"/api/v1/polls/{poll_id}/votes", json={"option": 7})

    assert poll.status_code == 201 and [p["id"] for p in listed] == [poll_id]
    assert first.status_code == 201
    assert_problem(second, 409)
    assert_problem(out_of_range, 422)
    results = client.get(f"/api/v1/admin/polls/{poll_id}", headers=manager).json()
    assert (results["counts"], results["votes"]) == ([0, 1, 0], 1)


def test_a_non_founding_member_may_not_vote_in_a_founders_poll(client, db, clock, inner):
    manager = api_token(db, clock, "memberships:manage")
    sign_up(client)
    join(client, inner)  # never classified: not founding
    poll_id = client.post("/api/v1/admin/polls", headers=manager, json={
        "question": "Next?", "options": ["A", "B"], "segment": "founding",
        "closes_at": (clock.now() + timedelta(days=7)).isoformat()}).json()["id"]

    assert_problem(client.post(f"/api/v1/polls/{poll_id}/votes", json={"option": 0}), 403)


# ----------------------------------------------------------------------------- onboarding


def test_onboarding_advances_by_time_and_events_and_compares_retention(client, db, clock,
                                                                       inner):
    from tests.memberships.support import ScriptedProvider, make_customer
    from tests.memberships.support import join as join_flow

    engaged, quiet = make_customer(db, clock), make_customer(db, clock)
    provider = ScriptedProvider()
    ids = [join_flow(db, clock, provider, customer_id=c, tier_id=inner)
           for c in (engaged, quiet)]
    steps_done = []
    for day in range(31):
        if day == 4:  # the drop engine records the engaged member's first early access
            with db.transaction() as session:
                record_event(session, clock=clock, type="drop.early_access_used",
                             subject_type="drop", subject_id=1, customer_id=engaged)
        steps_done.append(jobs.advance_onboarding(db, clock=clock))
        clock.advance(days=1)
    assert jobs.advance_onboarding(db, clock=clock) == 0

    with db.transaction() as session:
        done = {(p.membership_id, p.step_key): p.due_at.date().isoformat()
                for p in session.scalars(select(OnboardingProgress))}
    assert len([k for k in done if k[0] == ids[0]]) == 5
    assert sorted(k[1] for k in done if k[0] == ids[1]) == ["check-in", "perk-reveal",
                                                           "survey", "welcome"]
    assert done[(ids[0], "first-early-access")] == "2026-03-06"
    report = client.get("/api/v1/admin/memberships/onboarding",
                        headers=api_token(db, clock, "memberships:read")).json()
    assert report["retention"]["completed"]["members"] == 1
    assert report["retention"]["not_completed"]["members"] == 1
    assert report["retention"]["completed"]["retained_30d"] == 1.0
