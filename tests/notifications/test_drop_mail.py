"""The drop's mails (announcement, early access open, waitlist offer) through the one outbox,
sent by SMTP to a real server (aiosmtpd) and read back; marketing mail and unsubscribing."""

from __future__ import annotations

import re
import pytest
from sqlalchemy import select

from dropline.adapters.payments import LocalCardProvider
from dropline.customers.models import Customer
from dropline.drops import service as drops
from dropline.drops.mails import queue_early_access_mails
from dropline.drops.models import HoldSource

from dropline.notifications import service
from dropline.notifications.errors import UnsubscribeLinkInvalid, UnsubscribeLinkUsed
from dropline.notifications.models import MailOutboxItem, MailStatus, MarketingOptOut
from dropline.notifications.service import opt_out_of_marketing
from tests.drops.builders import make_drop
from tests.memberships.support import join, make_tier
from tests.notifications.conftest import send_outbox
from tests.orders.lifecycle_builders import paid_order
from tests.builders import make_location, make_product

SECRET = "test-secret"


def _customer(db, clock, email: str, name: str = "") -> int:
    with db.transaction() as session:
        customer = Customer(email=email, name=name, password_hash="x", created_at=clock.now())
        session.add(customer)
        session.flush()
        return customer.id


def _outbox(db) -> list[tuple[str, int | None, MailStatus]]:
    with db.transaction() as session:
        return [(i.template, i.customer_id, i.status) for i in session.scalars(
            select(MailOutboxItem).order_by(MailOutboxItem.id))]


def _unsubscribe_url(message) -> str:
    return re.search(r"https://shop\.example/unsubscribe/\S+",
                     message.get_body(("plain",)).get_content()).group(0)


def test_a_new_drop_is_announced_by_mail_with_a_one_click_unsubscribe(db, clock,
                                                                       smtp_server):
    inbox, port = smtp_server
    ada = _customer(db, clock, "ada@example.com", "Ada")
    world = make_drop(db, clock, starts_in=24 * 60, early_access_minutes=30, limit=2)

    report = send_outbox(db, clock, port)

    assert _outbox(db) == [("drop_announcement", ada, MailStatus.sent)]
    assert report.sent == 1
    (mail,) = inbox.messages
    assert mail["To"] == "ada@example.com"
    assert mail["Subject"] == "Midnight Fig drops on Tue 03 Mar 2026, 10:00 (UK time)"
    text = " ".join(mail.get_body(("plain",)).get_content().split())
    html = mail.get_body(("html",)).get_content()
    assert "Hello Ada," in text and "2 per person" in text
    assert "members with early access can buy from Tue 03 Mar 2026, 09:30 (UK time)" in text
    with db.transaction() as session:
        slug = drops.get_drop(session, world.drop_id).slug
    assert f"https://shop.example/drops/{slug}" in text
    url = _unsubscribe_url(mail)
    assert mail["List-Unsubscribe"].strip() == f"<{url}>"  # folded: a long header line
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'href="{url}"' in html


def test_a_drop_already_live_or_in_the_past_is_not_announced(db, clock):
    _customer(db, clock, "ada@example.com")

    make_drop(db, clock, starts_in=0)

    assert _outbox(db) == []


def test_an_unsubscribed_customer_gets_no_marketing_mail_but_still_their_order_mail(
        db, clock, settings, smtp_server):
    inbox, port = smtp_server
    make_location(db)
    variant = make_product(db, clock, stock=5)[1]
    order_id = paid_order(db, clock, settings, [(variant, 1)], email="bo@example.com")
    with db.transaction() as session:
        bo = session.scalar(select(Customer.id).where(Customer.email == "bo@example.com"))
        opt_out_of_marketing(session, clock=clock, customer_id=bo)
    ada = _customer(db, clock, "ada@example.com")

    make_drop(db, clock, starts_in=60, with_location=False)
    send_outbox(db, clock, port)

    assert _outbox(db) == [("order_confirmation", bo, MailStatus.sent),
                           ("drop_announcement", ada, MailStatus.sent)]
    assert sorted((m["To"], m["Subject"].split()[-1]) for m in inbox.messages) == [
        ("ada@example.com", "time)"), ("bo@example.com", "confirmed")]
    assert f"order {order_id}" in inbox.messages[0]["Subject"]


def test_marketing_mail_queued_before_an_unsubscribe_is_skipped_not_sent(db, clock,
                                                                         smtp_server):
    inbox, port = smtp_server
    ada = _customer(db, clock, "ada@example.com")
    make_drop(db, clock, starts_in=60)
    with db.transaction() as session:
        opt_out_of_marketing(session, clock=clock, customer_id=ada)

    report = send_outbox(db, clock, port)

    assert (report.sent, report.failed, inbox.messages) == (0, 0, [])
    assert _outbox(db) == [("drop_announcement", ada, MailStatus.skipped)]


def test_the_unsubscribe_link_works_once_and_a_forged_one_never(db, clock, smtp_server):
    inbox, port = smtp_server
    ada = _customer(db, clock, "ada@example.com")
    bo = _customer(db, clock, "bo@example.com")
    make_drop(db, clock, starts_in=60)
    send_outbox(db, clock, port)
    by_to = {m["To"]: _unsubscribe_url(m).rsplit("/", 1)[1] for m in inbox.messages}
    ada_token, bo_token = by_to["ada@example.com"], by_to["bo@example.com"]
    mail_id, signature = ada_token.split(".")
    forged = [f"{mail_id}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
              f"{bo_token.split('.')[0]}.{signature}",  # Ada's signature on Bo's mail
              f"{mail_id}.", "garbage", f"999999.{signature}"]

    for token in forged:
        with pytest.raises(UnsubscribeLinkInvalid), db.transaction() as session:
            service.unsubscribe(session, clock=clock, token=token, secret_key=SECRET)
    with pytest.raises(UnsubscribeLinkInvalid), db.transaction() as session:
        service.unsubscribe(session, clock=clock, token=ada_token, secret_key="another-key")
    with db.transaction() as session:
        assert session.scalars(select(MarketingOptOut)).all() == []
        assert service.unsubscribe(session, clock=clock, token=ada_token,
                                   secret_key=SECRET) == ada
    with db.transaction() as session:
        service.opt_in_to_marketing(session, customer_id=ada)
    with pytest.raises(UnsubscribeLinkUsed), db.transaction() as session:
        service.unsubscribe(session, clock=clock, token=ada_token, secret_key=SECRET)

    with db.transaction() as session:  # the reused link did not undo the opt-in
        assert service.is_subscribed(session, customer_id=ada)
        assert service.is_subscribed(session, customer_id=bo)


def test_early_access_opens_by_mail_for_members_when_their_window_opens_once(
        db, clock, smtp_server):
    inbox, port = smtp_server
    provider = LocalCardProvider(db.sessions, clock)
    long_lead = make_tier(db, clock, early_access_minutes=60)
    short_lead = make_tier(db, clock, early_access_minutes=15)
    ada = _customer(db, clock, "ada@example.com")
    bo = _customer(db, clock, "bo@example.com")
    _customer(db, clock, "cy@example.com")  # not a member
    join(db, clock, provider, customer_id=ada, tier_id=long_lead)
    join(db, clock, provider, customer_id=bo, tier_id=short_lead)
    make_drop(db, clock, starts_in=120, early_access_minutes=30)
    with db.transaction() as session:  # the announcements are not what this test is about
        session.query(MailOutboxItem).delete()

    before = queue_early_access_mails(db, clock=clock)
    clock.advance(minutes=90)  # the drop's early access (30 minutes) opens: Ada's
    at_open = queue_early_access_mails(db, clock=clock)
    again = queue_early_access_mails(db, clock=clock)
    clock.advance(minutes=15)  # Bo's 15 minutes
    bo_open = queue_early_access_mails(db, clock=clock)
    send_outbox(db, clock, port)

    assert (before, at_open, again, bo_open) == (0, 1, 0, 1)
    assert [(m["To"], m["Subject"]) for m in inbox.messages] == [
        ("ada@example.com", "Early access to Midnight Fig is open"),
        ("bo@example.com", "Early access to Midnight Fig is open")]
    assert "List-Unsubscribe=One-Click" == inbox.messages[0]["List-Unsubscribe-Post"]
    assert "before everyone else at Mon 02 Mar 2026, 12:00 (UK time)" in \
        inbox.messages[0].get_body(("plain",)).get_content()


def test_a_waitlisted_shopper_is_mailed_the_offer_once_even_if_unsubscribed(
        db, clock, smtp_server):
    inbox, port = smtp_server
    world = make_drop(db, clock, cap=1, limit=1, offer_ttl=900)
    first = _customer(db, clock, "first@example.com")
    waiting = _customer(db, clock, "waiting@example.com")
    with db.transaction() as session:
        drop = drops.get_drop(session, world.drop_id)
        drops.create_hold(session, clock=clock, drop=drop, customer_id=first,
                          lines=[drops.HoldLine(world.variant_ids[0], 1)], source=HoldSource.direct)
        drops.join_waitlist(session, clock=clock, drop=drop, customer_id=waiting,
                            variant_id=world.variant_ids[0], quantity=1)
        opt_out_of_marketing(session, clock=clock, customer_id=waiting)  # offers are not news

    with db.transaction() as session:
        offers = drops.restock_drop(session, clock=clock, drop=drops.get_drop(
            session, world.drop_id), units=1)
    send_outbox(db, clock, port)
    clock.advance(minutes=2)
    send_outbox(db, clock, port)

    assert offers == 1
    (mail,) = inbox.messages
    assert mail["To"] == "waiting@example.com"
    # A subject longer than a header line is folded; unfolded it reads the same.
    assert mail["Subject"].strip() == "Midnight Fig: units are held for you until " \
                                      "Mon 02 Mar 2026, 10:15 (UK time)"
    assert "List-Unsubscribe" not in mail
    assert "1 is held for you" in mail.get_body(("plain",)).get_content()
    assert _outbox(db) == [("waitlist_offer", waiting, MailStatus.sent)]
