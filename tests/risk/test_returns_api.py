"""Returns through the API: request, receive, automatic approval and refund below the
threshold, review above it, graded restock, serials, and the refusals."""

from __future__ import annotations

from sqlalchemy import select

from dropline.catalog.models import ConditionGrade
from dropline.events.models import DomainEvent
from dropline.locations.models import StockLevel
from dropline.orders.models import Order
from dropline.payments.models import LocalProviderCharge, Refund
from dropline.risk.models import RiskDecision
from tests.risk.support import admin_headers, ask_return, buy, key, receive, shop
from tests.web.support import assert_problem


def test_a_return_below_the_threshold_is_refunded_automatically_less_the_fee(client, db, clock):
    ids = shop(db, clock, price=6000)
    order = buy(client, ids["variant_id"])  # 6000, free shipping over 5000
    ret = ask_return(client, order, reason="changed-mind")
    assert ret["status"] == "requested"
    clock.advance(days=9)  # past the wardrobing window, inside the 30-day return window

    done = receive(client, admin_headers(db, clock), ret["id"], grade="new")

    assert done["status"] == "refunded"
    assert (done["gross_amount"], done["fee_amount"], done["refund_amount"]) == (6000, 600, 5400)
    with db.transaction() as session:
        assert session.get(Order, order["id"]).refunded_amount == 5400
        refunds = session.scalars(select(Refund)).all()
        assert [(r.amount, r.status.value) for r in refunds] == [(5400, "succeeded")]
        assert session.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == ids["variant_id"])) == 20  # 19 after the sale, +1 back
        types = [e.type for e in session.scalars(select(DomainEvent).where(
            DomainEvent.subject_type == "return").order_by(DomainEvent.id))]
        assert types == ["return.requested", "return.received", "return.approved",
                         "return.refunded"]
        decision = session.scalar(select(RiskDecision))
        assert (decision.decision, decision.actor) == ("approve", "system")
        assert decision.reasons == ["no risk signal fired"]


def test_a_faulty_item_is_refunded_in_full_and_goes_back_as_its_graded_variant(client, db,
                                                                               clock):
    ids = shop(db, clock, price=6000)
    from dropline.catalog.service import get_product

    with db.transaction() as session:
        product = get_product(session, ids["product_id"])
        from dropline.catalog.models import Variant

        graded = Variant(product_id=product.id, sku="GRADED-B", name="50 ml (grade B)",
                         price_amount=4000, currency="GBP",
                         condition_grade=ConditionGrade.refurbished_b,
                         condition_disclosure="Light signs of use on the cap.")
        session.add(graded)
        session.flush()
        graded_id = graded.id
    order = buy(client, ids["variant_id"])
    ret = ask_return(client, order, reason="defective")
    clock.advance(days=10)

    done = receive(client, admin_headers(db, clock), ret["id"], grade="refurbished-b")

    assert done["refund_amount"] == 6000 and done["fee_amount"] == 0
    assert done["restock_variant_id"] == graded_id
    with db.transaction() as session:
        levels = dict(session.execute(select(StockLevel.variant_id, StockLevel.on_hand)).all())
    assert levels == {ids["variant_id"]: 19, graded_id: 1}


def test_a_return_after_the_window_or_of_a_final_sale_item_is_refused(client, db, clock):
    ids = shop(db, clock)
    headers = admin_headers(db, clock)
    policy = client.put(f"/api/v1/admin/products/{ids['product_id']}/return-policy",
                        json={"window_days": 5}, headers=headers)
    assert policy.status_code == 200, policy.text
    order = buy(client, ids["variant_id"])
    clock.advance(days=5, seconds=1)
    late = client.post(f"/api/v1/orders/{order['id']}/returns", json={
        "variant_id": order["lines"][0]["variant_id"], "reason": "changed-mind"})
    assert "5-day return window closed" in assert_problem(late, 409)["detail"]

    client.put(f"/api/v1/admin/products/{ids['product_id']}/return-policy",
               json={"final_sale": True, "window_days": 30}, headers=headers)
    final = client.post(f"/api/v1/orders/{order['id']}/returns", json={
        "variant_id": order["lines"][0]["variant_id"], "reason": "changed-mind"})
    assert "final sale" in assert_problem(final, 409)["detail"]


def test_more_units_than_were_bought_cannot_be_returned(client, db, clock):
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"], quantity=2)
    ask_return(client, order, quantity=2)
    again = client.post(f"/api/v1/orders/{order['id']}/returns", json={
        "variant_id": order["lines"][0]["variant_id"], "reason": "changed-mind"})
    assert assert_problem(again, 422)["returnable"] == 0


def test_another_customers_order_cannot_be_returned(client, db, clock):
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    from tests.builders import sign_up

    sign_up(client)  # the client is now someone else
    response = client.post(f"/api/v1/orders/{order['id']}/returns", json={
        "variant_id": order["lines"][0]["variant_id"], "reason": "changed-mind"})
    assert_problem(response, 404)


def test_a_serial_never_sold_sends_the_return_to_review_and_no_money_moves(client, db, clock):
    ids = shop(db, clock, price=9000, grade=ConditionGrade.refurbished_a, family="diffusers")
    order = buy(client, ids["variant_id"])
    headers = admin_headers(db, clock)
    sold = client.post(f"/api/v1/admin/orders/{order['id']}/serials", headers=headers, json={
        "variant_id": order["lines"][0]["variant_id"], "serials": ["SN-0001"]})
    assert sold.status_code == 201, sold.text
    ret = ask_return(client, order, reason="not-as-described")
    clock.advance(days=10)

    done = receive(client, headers, ret["id"], grade="refurbished-a", serial="SN-FAKE-9")

    assert done["status"] == "in-review" and done["refund_id"] is None
    case = client.get("/api/v1/admin/risk/queue", headers=headers).json()
    assert len(case) == 1 and case[0]["return_id"] == ret["id"]
    mismatch = [s for s in case[0]["signals"] if s["name"] == "serial_mismatch"]
    assert "SN-FAKE-9 was never sold by this shop" in mismatch[0]["reason"]
    assert "SN-0001" in mismatch[0]["reason"]
    with db.transaction() as session:
        assert session.scalar(select(Refund.id)) is None
        assert session.scalar(select(LocalProviderCharge.id).where(
            LocalProviderCharge.kind == "refund")) is None


def test_the_matching_serial_passes_and_a_reviewer_can_approve_a_partial_refund(client, db,
                                                                                 clock):
    ids = shop(db, clock, price=9000, grade=ConditionGrade.refurbished_a, family="diffusers")
    order = buy(client, ids["variant_id"])
    headers = admin_headers(db, clock)
    client.post(f"/api/v1/admin/orders/{order['id']}/serials", headers=headers, json={
        "variant_id": order["lines"][0]["variant_id"], "serials": ["SN-0001"]})
    client.post("/api/v1/admin/chargebacks", headers=headers,
                json={"order_id": order["id"], "amount": 100, "reason": "fraudulent"})
    ret = ask_return(client, order, reason="not-as-described")
    clock.advance(days=10)
    done = receive(client, headers, ret["id"], grade="refurbished-a", serial="SN-0001")
    assert done["status"] == "in-review"  # the chargeback, not the serial
    case = client.get("/api/v1/admin/risk/queue", headers=headers).json()[0]
    assert [s["name"] for s in case["signals"]] == ["chargebacks"]

    decided = client.post(f"/api/v1/admin/returns/{ret['id']}/decision",
                          headers={**headers, **key()},
                          json={"decision": "approve", "refund_amount": 2500,
                                "note": "partial: box missing"})

    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "refunded" and decided.json()["refund_amount"] == 2500
    case = client.get(f"/api/v1/admin/risk/cases/{case['id']}", headers=headers).json()
    assert case["status"] == "approved"
    assert [(d["decision"], d["actor"]) for d in case["decisions"]][-1][0] == "approve"
    assert case["decisions"][-1]["actor"].startswith("token:")
    assert client.get("/api/v1/admin/risk/queue", headers=headers).json() == []


def test_a_partial_refund_above_the_full_refund_is_refused_and_changes_nothing(client, db,
                                                                               clock):
    ids = shop(db, clock, price=6000)
    order = buy(client, ids["variant_id"])
    headers = admin_headers(db, clock)
    client.post("/api/v1/admin/chargebacks", headers=headers,
                json={"order_id": order["id"], "amount": 100})
    ret = ask_return(client, order)
    clock.advance(days=10)
    receive(client, headers, ret["id"])
    too_much = client.post(f"/api/v1/admin/returns/{ret['id']}/decision",
                           headers={**headers, **key()},
                           json={"decision": "approve", "refund_amount": 5401})
    assert assert_problem(too_much, 422)["full_amount"] == 5400
    assert client.get(f"/api/v1/admin/returns/{ret['id']}",
                      headers=headers).json()["status"] == "in-review"


def test_denying_needs_a_reason_and_is_recorded(client, db, clock):
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    headers = admin_headers(db, clock)
    client.post("/api/v1/admin/chargebacks", headers=headers,
                json={"order_id": order["id"], "amount": 100})
    ret = ask_return(client, order)
    receive(client, headers, ret["id"])
    silent = client.post(f"/api/v1/admin/returns/{ret['id']}/decision",
                         headers={**headers, **key()}, json={"decision": "deny"})
    assert_problem(silent, 422)
    denied = client.post(f"/api/v1/admin/returns/{ret['id']}/decision",
                         headers={**headers, **key()},
                         json={"decision": "deny", "note": "item was not ours"})
    assert denied.json()["status"] == "denied"
    mine = client.get("/api/v1/returns").json()
    assert [r["status"] for r in mine] == ["denied"]


def test_an_exchange_takes_the_other_variant_from_stock(client, db, clock):
    ids = shop(db, clock, price=6000)
    from dropline.catalog.models import Variant

    with db.transaction() as session:
        other = Variant(product_id=ids["product_id"], sku="OTHER-100", name="100 ml",
                        price_amount=6000, currency="GBP")
        session.add(other)
        session.flush()
        other_id = other.id
        session.add(StockLevel(location_id=1, variant_id=other_id, on_hand=3))
    order = buy(client, ids["variant_id"])
    response = client.post(f"/api/v1/orders/{order['id']}/returns", json={
        "variant_id": order["lines"][0]["variant_id"], "reason": "wrong-size",
        "preferred_outcome": "exchange", "exchange_variant_id": other_id})
    assert response.status_code == 201, response.text
    clock.advance(days=10)
    done = receive(client, admin_headers(db, clock), response.json()["id"])
    assert done["status"] == "exchanged" and done["refund_amount"] == 0
    with db.transaction() as session:
        assert session.get(StockLevel, (1, other_id)).on_hand == 2


def test_admin_endpoints_need_the_returns_scope(client, db, clock):
    from tests.builders import api_token

    wrong = api_token(db, clock, "orders:read")
    assert_problem(client.get("/api/v1/admin/returns", headers=wrong), 403)
    assert_problem(client.get("/api/v1/admin/audit", headers=wrong), 403)

