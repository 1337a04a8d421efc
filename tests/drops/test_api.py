"""The drop API end to end through HTTP: admin, waiting room, admission tokens, holds,
checkout, waitlist, report, rate limits, the waiting page."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dropline.config import DropsSettings
from dropline.orders.models import Order, OrderStatus
from dropline.ratelimit import MemoryRateLimiter
from tests.builders import (
    ADDRESS,
    DECLINED_PM,
    GOOD_PM,
    api_token,
    make_location,
    make_product,
    sign_up,
)
from tests.drops.builders import make_drop
from tests.web.support import assert_problem, browser_session

PAY = {"payment_method": GOOD_PM, "shipping_address": ADDRESS}


def other_browser(client: TestClient) -> TestClient:
    return browser_session(TestClient(client.app, raise_server_exceptions=False))


def admitted_token(client: TestClient, drop_id: int) -> str:
    assert client.post(f"/api/v1/drops/{drop_id}/queue").status_code == 200
    response = client.post(f"/api/v1/drops/{drop_id}/admission")
    assert response.status_code == 200, response.text
    return response.json()["token"]


def hold_body(variant_id: int, token: str | None = None, quantity: int = 1) -> dict:
    return {"lines": [{"variant_id": variant_id, "quantity": quantity}],
            "admission_token": token}


def test_an_admin_creates_a_drop_with_the_drops_scope_only(client, db, clock):
    make_location(db)
    _, variant = make_product(db, clock, stock=0)
    start = clock.now() + timedelta(hours=1)
    body = {"slug": "midnight-fig", "name": "Midnight Fig", "cap": 500, "per_person_limit": 2,
            "variants": [{"variant_id": variant}], "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(days=1)).isoformat(), "early_access_minutes": 30}

    refused = client.post("/api/v1/admin/drops", json=body,
                          headers=api_token(db, clock, "orders:read"))
    created = client.post("/api/v1/admin/drops", json=body,
                          headers=api_token(db, clock, "drops:manage"))

    assert_problem(refused, 403)
    assert created.status_code == 201, created.text
    drop = created.json()
    assert (drop["state"], drop["cap"], drop["remaining"]) == ("scheduled", 500, 500)
    clock.advance(minutes=31)
    assert client.get(f"/api/v1/drops/{drop['id']}").json()["state"] == "early-access"


def test_the_pre_queue_is_shuffled_and_later_arrivals_queue_in_order(client, db, clock):
    world = make_drop(db, clock, queue=True, starts_in=10)
    browsers = [other_browser(client) for _ in range(6)]
    for browser in browsers:
        sign_up(browser)
        assert browser.post(f"/api/v1/drops/{world.drop_id}/queue").status_code == 200
    clock.advance(minutes=11)
    late = other_browser(client)
    sign_up(late)

    positions = sorted(b.get(f"/api/v1/drops/{world.drop_id}/queue/me").json()["position"]
                       for b in browsers)
    late_position = late.post(f"/api/v1/drops/{world.drop_id}/queue").json()["position"]

    assert positions == [1, 2, 3, 4, 5, 6]
    assert late_position == 7


def test_admission_follows_the_rate_and_says_when_to_come_back(client, db, clock):
    world = make_drop(db, clock, queue=True, starts_in=5, per_minute=2)
    first, second = other_browser(client), other_browser(client)
    for browser in (first, second):
        sign_up(browser)
        browser.post(f"/api/v1/drops/{world.drop_id}/queue")
    clock.advance(minutes=5)
    ahead, behind = sorted((first, second), key=lambda b: b.get(
        f"/api/v1/drops/{world.drop_id}/queue/me").json()["position"])

    assert ahead.post(f"/api/v1/drops/{world.drop_id}/admission").status_code == 200
    waiting = behind.post(f"/api/v1/drops/{world.drop_id}/admission")
    problem = assert_problem(waiting, 409)
    assert problem["type"].endswith("/not-admitted-yet")
    assert waiting.headers["Retry-After"] == "30"  # 2 a minute: position 2 is 30 s after 1
    clock.advance(seconds=30)
    assert behind.post(f"/api/v1/drops/{world.drop_id}/admission").status_code == 200


def test_a_queued_drop_sells_only_with_an_admission_token_which_works_once(client, db, clock):
    world = make_drop(db, clock, queue=True, limit=1)
    sign_up(client)
    variant = world.variant_ids[0]

    no_token = client.post(f"/api/v1/drops/{world.drop_id}/holds", json=hold_body(variant))
    token = admitted_token(client, world.drop_id)
    held = client.post(f"/api/v1/drops/{world.drop_id}/holds", json=hold_body(variant, token))
    client.delete(f"/api/v1/drops/holds/{held.json()['id']}")
    replayed = client.post(f"/api/v1/drops/{world.drop_id}/holds", json=hold_body(variant, token))

    assert_problem(no_token, 403)
    assert held.status_code == 201, held.text
    assert held.json()["source"] == "queue"
    assert "already been used" in assert_problem(replayed, 403)["detail"]


def test_an_admission_token_cannot_be_shared_with_another_account_or_session(client, db, clock):
    world = make_drop(db, clock, queue=True)
    email = sign_up(client)["email"]
    token = admitted_token(client, world.drop_id)
    stranger, same_person_elsewhere = other_browser(client), other_browser(client)
    sign_up(stranger)
    stranger.post(f"/api/v1/drops/{world.drop_id}/queue")
    login = same_person_elsewhere.post("/api/v1/sessions",
                                       json={"email": email, "password": "correct horse battery"})
    assert login.status_code == 200

    for browser in (stranger, same_person_elsewhere):
        response = browser.post(f"/api/v1/drops/{world.drop_id}/holds",
                                json=hold_body(world.variant_ids[0], token))
        assert "cannot be shared" in assert_problem(response, 403)["detail"]
    assert client.post(f"/api/v1/drops/{world.drop_id}/holds",
                       json=hold_body(world.variant_ids[0], token)).status_code == 201


def test_checkout_of_a_hold_is_idempotent_and_the_order_reconciles(client, db, clock):
    world = make_drop(db, clock, limit=2, price=3000)
    sign_up(client)
    held = client.post(f"/api/v1/drops/{world.drop_id}/holds",
                       json=hold_body(world.variant_ids[0], quantity=2)).json()
    key = {"Idempotency-Key": "drop-order-1"}

    first = client.post(f"/api/v1/drops/holds/{held['id']}/checkout", json=PAY, headers=key)
    replay = client.post(f"/api/v1/drops/holds/{held['id']}/checkout", json=PAY, headers=key)

    assert first.status_code == 201, first.text
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    order = first.json()
    assert (order["status"], order["subtotal_amount"], order["total_amount"]) == ("paid", 6000,
                                                                                6000)
    assert client.get(f"/api/v1/drops/holds/{held['id']}").json()["order_id"] == order["id"]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_express_purchase_refuses_a_non_member_before_the_public_start(client, db, clock):
    world = make_drop(db, clock, starts_in=20, early_access_minutes=30)
    member = sign_up(client)
    public = other_browser(client)
    sign_up(public)
    client.app.state.drops_early_access = \
        lambda session, *, customer_id, at: 30 if customer_id == member["id"] else 0
    body = {**hold_body(world.variant_ids[0]), **PAY}

    refused = public.post(f"/api/v1/drops/{world.drop_id}/purchase", json=body,
                          headers={"Idempotency-Key": "early-1"})
    bought = client.post(f"/api/v1/drops/{world.drop_id}/purchase", json=body,
                         headers={"Idempotency-Key": "early-2"})

    assert assert_problem(refused, 409)["type"].endswith("/drop-not-open")
    assert refused.headers["Retry-After"] == str(20 * 60)
    assert bought.status_code == 201, bought.text
    assert bought.json()["status"] == "paid"


def test_the_waitlist_is_offered_freed_units_in_joining_order(client, db, clock):
    world = make_drop(db, clock, cap=1, limit=1, offer_ttl=60)
    variant = world.variant_ids[0]
    holder, first, second = client, other_browser(client), other_browser(client)
    for browser in (holder, first, second):
        sign_up(browser)
    held = holder.post(f"/api/v1/drops/{world.drop_id}/holds", json=hold_body(variant)).json()
    for browser in (first, second):
        joined = browser.post(f"/api/v1/drops/{world.drop_id}/waitlist",
                              json={"variant_id": variant, "quantity": 1})
        assert joined.status_code == 201, joined.text

    holder.delete(f"/api/v1/drops/holds/{held['id']}")
    offered = first.get(f"/api/v1/drops/{world.drop_id}/waitlist/me").json()
    still_waiting = second.get(f"/api/v1/drops/{world.drop_id}/waitlist/me").json()
    assert (offered["status"], still_waiting["status"]) == ("offered", "waiting")

    clock.advance(seconds=61)  # the first offer lapses; the job passes it on
    from dropline.drops.jobs import reclaim_drops

    reclaim_drops(db, clock=clock, redis_url=None)
    assert first.get(f"/api/v1/drops/{world.drop_id}/waitlist/me").json()["status"] == "lapsed"
    claimed = second.post(f"/api/v1/drops/{world.drop_id}/waitlist/claim", json=PAY,
                          headers={"Idempotency-Key": "claim-1"})
    assert claimed.status_code == 201, claimed.text
    assert second.get(f"/api/v1/drops/{world.drop_id}/waitlist/me").json()["status"] == "claimed"


def test_the_report_counts_sales_expiries_failures_and_bypasses(client, db, clock):
    world = make_drop(db, clock, cap=2, limit=1, hold_ttl=60)
    variant = world.variant_ids[0]
    buyer, lapser = client, other_browser(client)
    sign_up(buyer)
    sign_up(lapser)
    lapser.post(f"/api/v1/drops/{world.drop_id}/holds", json=hold_body(variant))
    buyer.post(f"/api/v1/drops/{world.drop_id}/purchase", json={**hold_body(variant), **PAY},
               headers={"Idempotency-Key": "r-1"})
    clock.advance(seconds=61)
    declined = {**PAY, "payment_method": DECLINED_PM}
    assert lapser.post(f"/api/v1/drops/{world.drop_id}/purchase",
                       json={**hold_body(variant), **declined},
                       headers={"Idempotency-Key": "r-2"}).status_code == 402

    report = client.get(f"/api/v1/admin/drops/{world.drop_id}/report",
                        headers=api_token(db, clock, "drops:manage")).json()

    assert (report["cap"], report["units_sold"], report["units_remaining"]) == (2, 1, 1)
    assert report["sell_through"] == 0.5
    assert report["holds_expired"] == 1 and report["payment_failures"] == 1
    assert report["bypassed_queue_order_ids"] == []
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)
                              .where(Order.status == OrderStatus.paid)) == 1


def test_too_many_requests_get_429_with_retry_after(client, db, clock):
    world = make_drop(db, clock)
    client.app.state.drops_limits = DropsSettings(identity_per_minute=3, ip_per_minute=100)
    client.app.state.drops_limiter = MemoryRateLimiter()
    sign_up(client)

    statuses = [client.post(f"/api/v1/drops/{world.drop_id}/queue").status_code
                for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    limited = client.post(f"/api/v1/drops/{world.drop_id}/queue")
    assert_problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_the_waiting_page_is_cacheable_and_carries_no_personal_data(client, db, clock):
    world = make_drop(db, clock, queue=True)
    email = sign_up(client)["email"]
    with db.transaction() as session:
        from dropline.drops.models import Drop

        slug = session.get(Drop, world.drop_id).slug

    page = client.get(f"/drops/{slug}/waiting-room")
    again = client.get(f"/drops/{slug}/waiting-room",
                       headers={"If-None-Match": page.headers["ETag"]})

    assert page.status_code == 200
    assert page.headers["Cache-Control"].startswith("public")
    assert email not in page.text and "set-cookie" not in page.headers
    assert again.status_code == 304
