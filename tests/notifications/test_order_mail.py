"""Order mails: queued by the events of the lifecycle in their transaction, once per event and
template, sent through the SMTP adapter to a real SMTP server (aiosmtpd) and read back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dropline.adapters.carriers import ManualCarrier
from dropline.adapters.email import SmtpSender
from dropline.adapters.payments import LocalCardProvider
from dropline.notifications.jobs import send_mail_outbox
from dropline.notifications.models import MailOutboxItem, MailStatus
from dropline.notifications.render import TEMPLATES, render_mail
from dropline.notifications.rules import MARKETING
from dropline.notifications.service import sample_context
from dropline.drops import flows as drop_flows
from dropline.drops.service import HoldLine
from dropline.orders import flows, lifecycle, shipments
from dropline.orders.models import Order
from tests.builders import ADDRESS, CREDIT_NOTES, checkout_policy, make_location, make_product
from tests.discounts.builders import make_code
from tests.drops.builders import CARD, make_drop, make_shopper
from tests.notifications.conftest import free_port
from tests.orders.lifecycle_builders import paid_order


def _send(db, clock, port, max_attempts=3):
    return send_mail_outbox(db, clock=clock, sender=SmtpSender("127.0.0.1", port,
                                                               starttls=False, timeout=5),
                            shop_name="Fig & Smoke", public_url="https://shop.example",
                            secret_key="test-secret", max_attempts=max_attempts)


def _shipped_order(db, clock, settings, tracking="RM123456785GB"):
    make_location(db)
    variant = make_product(db, clock, price=2000, stock=5, name="Fig <Leaf>")[1]
    order_id = paid_order(db, clock, settings, [(variant, 2)], email="ada@example.com")
    for _ in range(3):
        with db.transaction() as session:
            shipments.advance(session, clock=clock, order=session.get(Order, order_id))
    carriers = {"manual": ManualCarrier("https://track.example/{tracking}")}
    flows.ship_order(db, clock=clock, carriers=carriers, order_id=order_id, carrier="manual",
                     tracking_number=tracking)
    return order_id


def _outbox(db):
    with db.transaction() as session:
        return [(item.template, item.status, item.attempts) for item in
                session.scalars(select(MailOutboxItem).order_by(MailOutboxItem.id))]


def test_the_confirmation_and_shipped_mails_arrive_by_smtp_with_text_html_and_tracking(
        db, clock, settings, smtp_server):
    inbox, port = smtp_server
    order_id = _shipped_order(db, clock, settings)

    report = _send(db, clock, port)

    assert (report.sent, report.failed) == (2, 0)
    confirmation, shipped = inbox.messages
    assert confirmation["To"] == "ada@example.com"
    assert confirmation["Subject"] == f"Your Fig & Smoke order {order_id} is confirmed"
    assert shipped["Subject"] == f"Your Fig & Smoke order {order_id} is on its way"
    text = shipped.get_body(("plain",)).get_content()
    html = shipped.get_body(("html",)).get_content()
    assert "RM123456785GB" in text and "https://track.example/RM123456785GB" in text
    assert 'href="https://track.example/RM123456785GB"' in html
    assert "Fig &lt;Leaf&gt;" in html and "Fig <Leaf>" in text  # HTML escaped, text as is
    assert f"https://shop.example/orders/{order_id}" in text
    assert "£43.95" in confirmation.get_body(("plain",)).get_content()  # 2 x £20 + £3.95
    assert _outbox(db) == [("order_confirmation", MailStatus.sent, 1),
                           ("shipped", MailStatus.sent, 1)]


def test_a_sent_mail_is_never_sent_again(db, clock, settings, smtp_server):
    inbox, port = smtp_server
    _shipped_order(db, clock, settings)
    _send(db, clock, port)
    clock.advance(days=1)

    again = _send(db, clock, port)

    assert again.sent == 0 and len(inbox.messages) == 2


def test_a_mail_that_could_not_be_handed_over_is_retried_later(db, clock, settings,
                                                                      smtp_server):
    inbox, port = smtp_server
    _shipped_order(db, clock, settings)
    closed = free_port()  # nothing listens there

    first = _send(db, clock, closed, max_attempts=2)
    soon = _send(db, clock, port)  # the retry is not due yet

    assert (first.failed, soon.sent) == (2, 0)
    clock.advance(minutes=1, seconds=1)
    assert _send(db, clock, port).sent == 2
    assert [m["Subject"].split()[-1] for m in inbox.messages] == ["confirmed", "way"]


def test_a_mail_failing_every_attempt_is_given_up(db, clock, settings):
    make_location(db)
    variant = make_product(db, clock, stock=5)[1]
    paid_order(db, clock, settings, [(variant, 1)])
    closed = free_port()

    for _ in range(2):
        _send(db, clock, closed, max_attempts=2)
        clock.advance(minutes=5)

    assert _outbox(db) == [("order_confirmation", MailStatus.failed, 2)]


def test_a_cancellation_mails_the_cancellation_and_the_refund(db, clock, settings):
    make_location(db)
    variant = make_product(db, clock, stock=5)[1]
    order_id = paid_order(db, clock, settings, [(variant, 1)])

    flows.cancel_order(db, clock=clock, provider=LocalCardProvider(db.sessions, clock),
                       policy=checkout_policy(), credit_notes=CREDIT_NOTES, order_id=order_id,
                       reason="changed my mind",
                       actor="test")

    assert [template for template, _, _ in _outbox(db)] == [
        "order_confirmation", "cancelled", "refund_issued"]


def test_a_rolled_back_change_queues_no_mail(db, clock, settings):
    make_location(db)
    variant = make_product(db, clock, stock=5)[1]
    order_id = paid_order(db, clock, settings, [(variant, 1)])

    with pytest.raises(RuntimeError), db.transaction() as session:
        lifecycle.cancel_whole(session, clock=clock, policy=checkout_policy(),
                               order=session.get(Order, order_id), reason="test")
        assert session.scalar(select(MailOutboxItem.id).where(
            MailOutboxItem.template == "cancelled")) is not None
        raise RuntimeError("the command failed after the cancellation")

    assert [template for template, _, _ in _outbox(db)] == ["order_confirmation"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_its_preview(template):
    mail = render_mail(template, sample_context(template, shop_name="Fig & Smoke",
                                                public_url="https://shop.example"))
    about_a_drop = template in ("drop_announcement", "early_access_open", "waitlist_offer")
    if about_a_drop:
        assert "Fig Leaf No. 3" in mail.text and "Fig Leaf No. 3" in mail.subject
        assert "https://shop.example/drops/fig-leaf-3" in mail.text
    elif template == "membership_notice":
        assert mail.subject == "Receipt: Founding, £10.00"
        assert "£10.00 was charged to your card ending 4242" in mail.text
    else:
        assert "Order 1042" in mail.text and "1042" in mail.subject
    assert ("https://shop.example/unsubscribe/" in mail.text) is (template in MARKETING)
    assert mail.html.startswith("<!doctype html>") and "Fig &amp; Smoke" in mail.html


def test_a_mail_about_an_event_days_old_is_not_sent(db, clock, settings, smtp_server):
    inbox, port = smtp_server
    make_location(db)
    variant = make_product(db, clock, stock=5)[1]
    paid_order(db, clock, settings, [(variant, 1)])
    clock.advance(days=3)

    report = _send(db, clock, port)

    assert (report.sent, report.failed, inbox.messages) == (0, 1, [])
    assert _outbox(db) == [("order_confirmation", MailStatus.failed, 1)]


def test_a_drop_order_bought_with_a_code_is_confirmed_with_its_discount_and_vat(
        db, clock, settings, smtp_server):
    inbox, port = smtp_server
    world = make_drop(db, clock, cap=5, limit=2, price=4200)
    make_code(db, clock, code="FIGNIGHT", percent=10, drop_ids=[world.drop_id])
    order_id = drop_flows.purchase(
        db, clock=clock, settings=settings, provider=LocalCardProvider(db.sessions, clock),
        drop_id=world.drop_id, shopper=make_shopper(db, clock),
        lines=[HoldLine(world.variant_ids[0], 1)], admission_token=None, card=CARD,
        shipping_address=ADDRESS, checkout_reference="mail-code-1", discount_code="fignight")

    _send(db, clock, port)

    [confirmation] = inbox.messages
    assert confirmation["Subject"] == f"Your Fig & Smoke order {order_id} is confirmed"
    text = " ".join(confirmation.get_body(("plain",)).get_content().split())
    # 42.00 less 10 %, delivery 3.95: 41.75, of which VAT 6.30 (goods) + 0.66 (delivery)
    assert "Discount code FIGNIGHT -£4.20" in text and "Total £41.75" in text
    assert "£6.96" in text
