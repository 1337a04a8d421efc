"""Early access granted by a real membership tier, through the drop engine's default seam
(no stand-in): the tier's lead opens the drop for its members, capped by the drop's window."""

from __future__ import annotations

from sqlalchemy import select

from dropline.adapters.payments import LocalCardProvider
from dropline.events.models import DomainEvent
from tests.builders import sign_up
from tests.drops.builders import make_drop
from tests.drops.test_api import PAY, hold_body, other_browser
from tests.memberships.support import join, make_tier
from tests.web.support import assert_problem


def test_a_tiers_early_access_lets_its_members_buy_before_the_public(client, db, clock):
    world = make_drop(db, clock, starts_in=20, early_access_minutes=60)
    tier = make_tier(db, clock, early_access_minutes=30)
    member = sign_up(client)
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=member["id"], tier_id=tier)
    public = other_browser(client)
    sign_up(public)
    body = {**hold_body(world.variant_ids[0]), **PAY}

    refused = public.post(f"/api/v1/drops/{world.drop_id}/purchase", json=body,
                          headers={"Idempotency-Key": "public-early"})
    bought = client.post(f"/api/v1/drops/{world.drop_id}/purchase", json=body,
                         headers={"Idempotency-Key": "member-early"})

    assert assert_problem(refused, 409)["type"].endswith("/drop-not-open")
    assert bought.status_code == 201, bought.text
    assert bought.json()["status"] == "paid"
    with db.transaction() as session:
        used = session.scalars(select(DomainEvent.customer_id).where(
            DomainEvent.type == "drop.early_access_used")).all()
    assert used == [member["id"]]  # what the onboarding flow's early-access step waits for


def test_a_tier_lead_shorter_than_the_wait_still_refuses_its_member(client, db, clock):
    world = make_drop(db, clock, starts_in=45, early_access_minutes=60)
    tier = make_tier(db, clock, early_access_minutes=30)
    member = sign_up(client)
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=member["id"], tier_id=tier)

    refused = client.post(f"/api/v1/drops/{world.drop_id}/purchase",
                          json={**hold_body(world.variant_ids[0]), **PAY},
                          headers={"Idempotency-Key": "member-too-early"})

    assert assert_problem(refused, 409)["type"].endswith("/drop-not-open")
    assert refused.headers["Retry-After"] == str(15 * 60)
