"""The console's Orders pages over HTTP: search and filters with pages; an order packed,
shipped with tracking (slip, label and invoice PDFs), refunded by line less a restocking fee,
cancelled after a confirmation, its address changed, a note added, a mail queued again; the
find box goes to an order by number or serial. A refused form changes nothing and says why
beside its field with the values kept."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from dropline.admin.roles import Role
from dropline.notifications.models import MailOutboxItem
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import OrderStage
from dropline.payments.models import Refund
from dropline.risk.models import SerialStatus, SerialUnit
from tests.admin.console_support import sign_in_as
from tests.builders import make_location, make_product
from tests.orders.lifecycle_builders import paid_order


def _order(db, order_id) -> Order:
    with db.transaction() as session:
        order = session.get(Order, order_id)
        session.expunge(order)
        return order


def _setup(client, db, clock, settings, *, orders=1, price=2000, quantity=1):
    make_location(db)
    variant = make_product(db, clock, price=price, stock=100)[1]
    ids = [paid_order(db, clock, settings, [(variant, quantity)]) for _ in range(orders)]
    sign_in_as(client, db, clock, Role.owner)
    return ids


def test_an_order_is_packed_and_shipped_with_tracking_and_its_documents_print(
        client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings)
    page = client.get(f"/admin/orders/{order_id}")
    assert page.status_code == 200 and "Mark packed" in page.text
    assert client.post(f"/admin/orders/{order_id}/pack", follow_redirects=False
                       ).status_code == 303
    assert _order(db, order_id).stage is OrderStage.packed
    shipped = client.post(f"/admin/orders/{order_id}/ship",
                          data={"carrier": "manual", "tracking_number": "RM123456785GB"})
    assert shipped.status_code == 200 and "RM123456785GB" in shipped.text
    assert _order(db, order_id).stage is OrderStage.shipped
    shipment = re.search(r"/admin/shipments/(\d+)/packing-slip\.pdf", shipped.text).group(1)
    for path in (f"/admin/shipments/{shipment}/packing-slip.pdf",
                 f"/admin/shipments/{shipment}/label.pdf", f"/admin/orders/{order_id}/invoice.pdf"):
        pdf = client.get(path)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), path


def test_shipping_without_a_tracking_number_is_refused_beside_the_field(
        client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings)
    client.post(f"/admin/orders/{order_id}/pack")
    refused = client.post(f"/admin/orders/{order_id}/ship",
                          data={"carrier": "manual", "tracking_number": "<script>"})
    assert refused.status_code == 422
    assert 'id="tracking_number-error"' in refused.text
    assert 'value="&lt;script&gt;"' in refused.text
    assert _order(db, order_id).stage is OrderStage.packed


def test_one_line_is_refunded_less_a_restocking_fee_and_twice_sent_refunds_once(
        client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings, price=2000, quantity=2)
    with db.transaction() as session:
        line = session.scalar(select(OrderLine).where(OrderLine.order_id == order_id))
        line_id, line_total = line.id, line.line_total_amount - line.discount_amount
    form = {"line_id": str(line_id), "amount": "", "restocking_fee": "2.50",
            "reason": "changed mind", "form_key": "a" * 32}
    first = client.post(f"/admin/orders/{order_id}/refund", data=form, follow_redirects=False)
    again = client.post(f"/admin/orders/{order_id}/refund", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    order = _order(db, order_id)
    assert order.refunded_amount == line_total - 250
    assert order.status is OrderStatus.partially_refunded
    with db.transaction() as session:
        [refund] = session.scalars(select(Refund).where(Refund.order_id == order_id)).all()
        assert refund.actor.startswith("admin:") and refund.reason == "changed mind"


def test_a_refused_refund_changes_nothing_and_keeps_the_values(client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings, price=2000)
    cases = [({"amount": "12.345", "reason": "x"}, "amount"),
             ({"amount": "5.00", "restocking_fee": "6", "reason": "x"}, "restocking_fee"),
             ({"amount": "5.00", "reason": ""}, "reason"),
             ({"amount": "900.00", "reason": "too much"}, "amount")]
    for data, field in cases:
        response = client.post(f"/admin/orders/{order_id}/refund", data=data)
        assert response.status_code == 422, (data, response.status_code)
        assert f'id="{field}-error"' in response.text, data
        assert f'value="{data["amount"]}"' in response.text
    assert _order(db, order_id).refunded_amount == 0


def test_cancelling_asks_first_then_refunds_everything(client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings)
    asked = client.post(f"/admin/orders/{order_id}/cancel", data={"reason": "customer asked"})
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
    assert _order(db, order_id).stage is OrderStage.paid
    done = client.post(f"/admin/orders/{order_id}/cancel",
                       data={"reason": "customer asked", "confirm": "yes"},
                       follow_redirects=False)
    assert done.status_code == 303
    order = _order(db, order_id)
    assert order.stage is OrderStage.cancelled and order.status is OrderStatus.refunded


def test_the_address_changes_before_packing_and_a_bad_one_is_refused_beside_its_field(
        client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings)
    address = {"name": "Ada Lovelace", "line1": "2 Fournier St", "line2": "", "city": "London",
               "postcode": "E1 6QF", "country": "GB"}
    bad = client.post(f"/admin/orders/{order_id}/address", data={**address, "postcode": "E"})
    assert bad.status_code == 422 and 'id="postcode-error"' in bad.text
    assert 'value="2 Fournier St"' in bad.text
    assert _order(db, order_id).shipping_address["line1"] == "1 Fournier St"
    assert client.post(f"/admin/orders/{order_id}/address", data=address,
                       follow_redirects=False).status_code == 303
    assert _order(db, order_id).shipping_address["line1"] == "2 Fournier St"


def test_a_note_is_added_and_a_mail_is_queued_again(client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings)
    assert client.post(f"/admin/orders/{order_id}/notes", data={"body": "  "}
                       ).status_code == 422
    client.post(f"/admin/orders/{order_id}/notes", data={"body": "Gift wrap, please"})
    assert "Gift wrap, please" in client.get(f"/admin/orders/{order_id}").text
    with db.transaction() as session:
        mail_id = session.scalar(select(MailOutboxItem.id).where(
            MailOutboxItem.order_id == order_id))
    assert mail_id is not None
    client.post(f"/admin/orders/{order_id}/mails/{mail_id}/resend")
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(MailOutboxItem).where(
            MailOutboxItem.order_id == order_id)) == 2


def test_search_filters_and_pages(client, db, clock, settings):
    ids = _setup(client, db, clock, settings, orders=27)
    first = client.get("/admin/orders")
    shown = set(map(int, re.findall(r'href="/admin/orders/(\d+)"', first.text)))
    assert shown == set(ids[-25:]) and 'rel="next"' in first.text
    second = client.get("/admin/orders?page=2")
    assert set(map(int, re.findall(r'href="/admin/orders/(\d+)"', second.text))) == set(ids[:2])
    email = _order(db, ids[3]).email
    found = client.get("/admin/orders", params={"q": email})
    assert set(map(int, re.findall(r'href="/admin/orders/(\d+)"', found.text))) == {ids[3]}
    by_number = client.get("/admin/orders", params={"q": f"#{ids[5]}"})
    assert str(ids[5]) in by_number.text
    client.post(f"/admin/orders/{ids[0]}/pack")
    packed = client.get("/admin/orders", params={"stage": "packed"})
    assert set(map(int, re.findall(r'href="/admin/orders/(\d+)"', packed.text))) == {ids[0]}
    postcode = client.get("/admin/orders", params={"q": "E1 6QE", "location": "central"})
    assert len(re.findall(r'href="/admin/orders/(\d+)"', postcode.text)) == 25
    bad = client.get("/admin/orders", params={"since": "yesterday"})
    assert bad.status_code == 422 and 'id="since-error"' in bad.text


def test_the_find_box_goes_to_an_order_by_number_or_serial(client, db, clock, settings):
    [order_id] = _setup(client, db, clock, settings)
    with db.transaction() as session:
        line = session.scalar(select(OrderLine).where(OrderLine.order_id == order_id))
        session.add(SerialUnit(serial="SN-0042", variant_id=line.variant_id,
                               status=SerialStatus.sold, order_id=order_id,
                               order_line_id=line.id, grade="new"))
    for q in (str(order_id), f"#{order_id}", "SN-0042"):
        response = client.get("/admin/orders/find", params={"q": q}, follow_redirects=False)
        assert response.headers["location"] == f"/admin/orders/{order_id}", q
    missing = client.get("/admin/orders/find", params={"q": "nothing"}, follow_redirects=False)
    assert missing.headers["location"] == "/admin/orders?q=nothing"
    pick = client.get("/admin/pick-list")
    assert pick.status_code == 200 and 'action="/admin/orders/find"' in pick.text
