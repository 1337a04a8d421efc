"""Counter sales: card present, stock from the pop-up's own row, exactly one order per
Idempotency-Key, receipts by email, and sign-up at the counter on the card kept from the sale."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dropline.catalog.models import ConditionGrade, Variant
from dropline.customers.models import Customer
from dropline.fulfilment.models import FulfilmentDecisionRow
from dropline.locations.models import Location, StockLevel
from dropline.memberships.models import Membership
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.popups.models import PopupSale
from dropline.telemetry import service as telemetry
from dropline.telemetry.cohorts import value_by
from tests.builders import DECLINED_PM, api_token, sign_in_console
from tests.discounts.builders import make_code
from tests.invoices.test_invoices import pdf_text
from tests.memberships.support import make_tier
from tests.popups.support import open_popup, sale_body
from tests.web.support import assert_problem


@pytest.fixture(autouse=True)
def outbox_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPLINE_EMAIL_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("DROPLINE_SMTP_URL", raising=False)
    return tmp_path / "outbox"


def _on_hand(db, code: str, variant_id: int) -> int:
    with db.transaction() as session:
        return session.scalar(select(StockLevel.on_hand).join(
            Location, Location.id == StockLevel.location_id).where(
            Location.code == code, StockLevel.variant_id == variant_id))


def _orders(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Order))


def test_a_counter_sale_is_one_paid_order_however_often_it_is_sent(client, db, clock,
                                                                    outbox_dir):
    shop = open_popup(db, clock)
    headers = {**api_token(db, clock, "popups:sell"), "Idempotency-Key": "sale-1"}
    body = sale_body(shop.variants[0], 2)

    first = client.post("/api/v1/admin/popups/popup-test/sales", json=body, headers=headers)
    again = client.post("/api/v1/admin/popups/popup-test/sales", json=body, headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _orders(db) == 1
    assert _on_hand(db, "popup-test", shop.variants[0]) == 8
    with db.transaction() as session:
        order = session.get(Order, first.json()["order_id"])
        customer = session.get(Customer, order.customer_id)
        assert (order.status, order.total_amount, order.shipping_amount) == (
            OrderStatus.paid, 8400, 0)
        assert order.fulfilment_path == "pop-up"
        decision = session.scalar(select(FulfilmentDecisionRow).where(
            FulfilmentDecisionRow.order_id == order.id))
        assert (decision.path, decision.location_id, decision.rule) == (
            "pop-up", order.location_id, "counter sale: collected at the pop-up")
        assert (customer.acquisition_source, customer.acquisition_campaign) == (
            "pop-up", "popup-test")
    receipts = list(outbox_dir.glob("popup-receipt-*.eml"))
    assert len(receipts) == 1 and "£84.00" in receipts[0].read_text()


def test_a_declined_card_sells_nothing_and_gives_the_units_back(client, db, clock):
    shop = open_popup(db, clock)
    headers = {**api_token(db, clock, "popups:sell"), "Idempotency-Key": "sale-declined"}

    response = client.post("/api/v1/admin/popups/popup-test/sales", headers=headers,
                           json=sale_body(shop.variants[0], card=DECLINED_PM))

    assert_problem(response, 402)
    assert _on_hand(db, "popup-test", shop.variants[0]) == 10


def test_a_tap_above_the_contactless_limit_is_declined(client, db, clock):
    shop = open_popup(db, clock)
    headers = {**api_token(db, clock, "popups:sell"), "Idempotency-Key": "big-tap"}

    response = client.post("/api/v1/admin/popups/popup-test/sales", headers=headers,
                           json=sale_body(shop.variants[0], 3))  # 126.00 > 100.00

    assert assert_problem(response, 402)["decline_code"] == "contactless_limit"
    assert _on_hand(db, "popup-test", shop.variants[0]) == 10


def test_the_counter_cannot_sell_more_than_the_pop_up_holds(client, db, clock):
    shop = open_popup(db, clock, stock=(1, 1))
    headers = {**api_token(db, clock, "popups:sell"), "Idempotency-Key": "too-many"}

    response = client.post("/api/v1/admin/popups/popup-test/sales", headers=headers,
                           json=sale_body(shop.variants[1], 2))

    assert_problem(response, 409)
    assert _orders(db) == 0 and _on_hand(db, "popup-test", shop.variants[1]) == 1


def test_bad_sale_input_is_refused_without_a_write(client, db, clock):
    shop = open_popup(db, clock)
    headers = {**api_token(db, clock, "popups:sell"), "Idempotency-Key": "bad"}
    for body in ({**sale_body(shop.variants[0]), "lines": []},
                 {**sale_body(shop.variants[0]), "email": "not-an-email"},
                 sale_body(999_999)):
        response = client.post("/api/v1/admin/popups/popup-test/sales", json=body,
                               headers={**headers, "Idempotency-Key": str(hash(str(body)))})
        assert response.status_code in (404, 422), response.text
    assert _orders(db) == 0


def test_staff_sign_the_buyer_up_at_the_counter_on_the_card_from_the_sale(client, db, clock,
                                                                          outbox_dir):
    shop = open_popup(db, clock)
    make_tier(db, clock, slug="friends", price=900)
    sign_in_console(client, db, clock)
    sale = client.post("/admin/counter/popup-test/sales", json=sale_body(shop.variants[1]),
                       headers={"Idempotency-Key": "counter-1"})
    assert sale.status_code == 201, sale.text
    assert sale.json()["can_sign_up"] is True
    order_id = sale.json()["order_id"]

    joined = client.post(f"/admin/counter/popup-test/sales/{order_id}/membership",
                         json={"tier": "friends"})
    twice = client.post(f"/admin/counter/popup-test/sales/{order_id}/membership",
                        json={"tier": "friends"})

    assert joined.status_code == 200, joined.text
    assert joined.json()["status"] == "active"
    assert twice.json()["membership_id"] == joined.json()["membership_id"]
    with db.transaction() as session:
        membership = session.scalar(select(Membership))
        customer = session.get(Customer, membership.customer_id)
        assert customer.acquisition_source == "pop-up"
        assert session.scalar(select(func.count()).select_from(Membership)) == 1
        # the pop-up source flows into telemetry's cuts by acquisition source
        _, customers = telemetry.load_customers(session, as_of=clock.now())
        assert "pop-up" in {g.key for g in value_by(customers, "source", days=30)}

    link = client.post(f"/admin/counter/popup-test/sales/{order_id}/signup-link")
    assert link.status_code == 200
    message = (outbox_dir / f"popup-signup-link-{order_id}.eml").read_text()
    assert "utm_source=pop-up&utm_campaign=popup-test" in message


def test_the_counter_api_needs_a_console_sign_in(client, db, clock):
    shop = open_popup(db, clock)
    response = client.post("/admin/counter/popup-test/sales", json=sale_body(shop.variants[0]),
                           headers={"Idempotency-Key": "anon"})
    assert_problem(response, 401)
    assert client.get("/counter/popup-test", follow_redirects=False).headers["location"] == \
        "/admin/counter/popup-test"
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PopupSale)) == 0


def test_the_receipt_of_a_graded_item_carries_its_condition_disclosure(client, db, clock,
                                                                        outbox_dir):
    shop = open_popup(db, clock)
    with db.transaction() as session:
        graded = session.get(Variant, shop.variants[0])
        graded.condition_grade = ConditionGrade.refurbished_b
        graded.condition_disclosure = "Hairline glaze crack, sealed."
    headers = {**api_token(db, clock, "popups:sell"), "Idempotency-Key": "sale-graded"}

    graded_sale = client.post("/api/v1/admin/popups/popup-test/sales",
                              json=sale_body(shop.variants[0], 1), headers=headers)
    new_sale = client.post("/api/v1/admin/popups/popup-test/sales",
                           json=sale_body(shop.variants[1], 1),
                           headers={**headers, "Idempotency-Key": "sale-new"})

    assert graded_sale.status_code == 201 and new_sale.status_code == 201
    graded_receipt = (outbox_dir / f"popup-receipt-{graded_sale.json()['order_id']}.eml")
    new_receipt = (outbox_dir / f"popup-receipt-{new_sale.json()['order_id']}.eml")
    text = graded_receipt.read_text()
    assert "Condition: Refurbished, grade B. Hairline glaze crack, sealed." in text
    assert "/returns-policy#grades" in text
    assert "Condition" not in new_receipt.read_text()  # nothing to disclose on a new item


def test_a_counter_sale_records_its_vat_and_its_invoice_shows_it(client, db, clock):
    shop = open_popup(db, clock)  # 42.00 and 25.00, standard-rated, sold in the UK shop
    headers = {**api_token(db, clock, "popups:sell", "invoices:manage"),
               "Idempotency-Key": "sale-vat"}
    body = {**sale_body(shop.variants[0]),
            "lines": [{"variant_id": shop.variants[0], "quantity": 1},
                      {"variant_id": shop.variants[1], "quantity": 1}]}

    sold = client.post("/api/v1/admin/popups/popup-test/sales", json=body, headers=headers)
    order_id = sold.json()["order_id"]
    issued = client.post(f"/api/v1/admin/orders/{order_id}/invoice", headers=headers)
    pdf = client.get(f"/api/v1/admin/invoices/{issued.json()['reference']}.pdf",
                     headers=headers)

    assert sold.status_code == 201, sold.text
    with db.transaction() as session:
        order = session.get(Order, order_id)
        lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)
                                .order_by(OrderLine.variant_id)).all()
        # 42.00 holds 7.00 VAT at 20 %, 25.00 holds 4.17; no delivery, nothing added on top
        assert (order.tax_amount, order.tax_added_amount, order.total_amount,
                order.tax_country) == (1117, 0, 6700, "GB")
        assert [(li.tax_rate_bp, li.tax_amount) for li in lines] == [(2000, 700), (2000, 417)]
    text = pdf_text(pdf.content)
    assert "VAT 20% £55.83 £11.17" in text
    assert "Total VAT £11.17" in text and "Total £67.00" in text


def test_a_discount_code_at_the_counter_applies_by_its_scope_and_cap(client, db, clock,
                                                                      outbox_dir):
    shop = open_popup(db, clock)  # 42.00 eau de parfum, 25.00 candle
    make_code(db, clock, code="CANDLES20", percent=20, family_slugs=["candles"], max_uses=1)
    make_code(db, clock, code="DROPONLY", percent=50, drop_ids=[404])
    headers = api_token(db, clock, "popups:sell")
    both = [{"variant_id": shop.variants[0], "quantity": 1},
            {"variant_id": shop.variants[1], "quantity": 1}]

    def sell(key: str, code: str):
        return client.post("/api/v1/admin/popups/popup-test/sales",
                           json={**sale_body(shop.variants[0]), "lines": both,
                                 "discount_code": code},
                           headers={**headers, "Idempotency-Key": key})

    sold = sell("code-1", "candles20")  # any case
    used_up = sell("code-2", "CANDLES20")
    drop_only = sell("code-3", "DROPONLY")
    unknown = sell("code-4", "NOPE")

    assert sold.status_code == 201, sold.text
    # 20 % off the candle only: 5.00 off; the VAT is on what was paid (7.00 + 3.33)
    assert (sold.json()["discount_code"], sold.json()["discount_amount"],
            sold.json()["total_amount"], sold.json()["tax_amount"]) == ("CANDLES20", 500,
                                                                          6200, 1033)
    assert_problem(used_up, 409)
    assert used_up.json()["field"] == "discount_code" and "used up" in used_up.json()["detail"]
    assert_problem(drop_only, 422)
    assert drop_only.json()["field"] == "discount_code"
    assert_problem(unknown, 422)
    assert _orders(db) == 1  # refused sales write nothing, and take no stock
    assert _on_hand(db, "popup-test", shop.variants[1]) == 4
    receipt = next(outbox_dir.glob("popup-receipt-*.eml")).read_text()
    assert "Discount (CANDLES20): -£5.00" in receipt and "Total paid: £62.00" in receipt
    assert "Includes VAT of £10.33" in receipt
