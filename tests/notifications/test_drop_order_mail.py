"""A drop purchase mails its order confirmation on both engines: the database path through
the ``order.paid`` event's subscriber, the flash-crowd engine (PostgreSQL + Redis) through
its batch writer, which bypasses the subscribers and queues the mail rows in the same batch
write (``notifications.bulk``). One scenario, run against both; read back through aiosmtpd."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from dropline.events.models import DomainEvent
from dropline.notifications.models import MailOutboxItem, MailStatus
from tests.builders import DECLINED_PM
from tests.drops.test_purchase_rules import _shop, purchase_body
from tests.notifications.conftest import send_outbox


@pytest.mark.parametrize("engine", ["database", "engine"])
def test_a_drop_order_is_confirmed_by_mail_once_and_a_declined_one_not(
        engine, db, clock, settings, smtp_server):
    inbox, port = smtp_server
    with _shop(engine, db, clock, settings) as shop:
        world = shop.drop(cap=5, limit=2)
        buyer, declined = shop.shopper(), shop.shopper()
        key = uuid.uuid4().hex
        bought = shop.buy(buyer, world, quantity=2, key=key)
        replayed = shop.buy(buyer, world, quantity=2, key=key)
        refused = shop.post(declined, f"/api/v1/drops/{world.drop_id}/purchase",
                            headers={"Idempotency-Key": uuid.uuid4().hex},
                            json={**purchase_body(world), "payment_method": DECLINED_PM})
        assert bought.status_code == 201, bought.text
        assert replayed.json()["id"] == bought.json()["id"]
        assert refused.status_code == 402, refused.text
    order_id = bought.json()["id"]

    report = send_outbox(db, clock, port)

    with db.transaction() as session:
        mails = session.execute(select(MailOutboxItem.template, MailOutboxItem.order_id,
                                       MailOutboxItem.customer_id, MailOutboxItem.status,
                                       MailOutboxItem.event_id)).all()
        paid_event = session.scalar(select(DomainEvent.event_id).where(
            DomainEvent.type == "order.paid", DomainEvent.subject_id == str(order_id)))
    assert [m[:4] for m in mails] == [("order_confirmation", order_id, buyer.customer_id,
                                       MailStatus.sent)]
    assert mails[0].event_id == paid_event  # the mail refers to its event, as per event
    assert report.sent == 1
    (mail,) = inbox.messages
    assert mail["Subject"] == f"Your Fig & Smoke order {order_id} is confirmed"
    text = mail.get_body(("plain",)).get_content()
    assert "2 x " in text and f"https://shop.example/orders/{order_id}" in text
