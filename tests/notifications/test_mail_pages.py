"""The mail pages: the storefront's unsubscribe (a page, and RFC 8058's one-click POST, which
needs no cookie and no form token), opting back in from the account page (a CSRF-protected
form), and the console's template previews and outbox."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from dropline.notifications.models import MailOutboxItem
from dropline.notifications.rules import unsubscribe_token
from dropline.notifications.service import is_subscribed
from tests.builders import sign_in_console, sign_up
from tests.drops.builders import make_drop
from tests.web.support import assert_problem, changed_tables, snapshot

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _announced(client, db, clock) -> tuple[int, str]:
    """A signed-up customer and the unsubscribe token of the drop announcement they got."""
    customer = sign_up(client)["id"]
    make_drop(db, clock, starts_in=60)
    with db.transaction() as session:
        mail_id = session.scalar(select(MailOutboxItem.id).where(
            MailOutboxItem.customer_id == customer))
    return customer, unsubscribe_token("test-secret", mail_id=mail_id, customer_id=customer)


def _subscribed(db, customer: int) -> bool:
    with db.transaction() as session:
        return is_subscribed(session, customer_id=customer)


def test_the_link_opens_a_page_whose_button_unsubscribes_and_a_get_changes_nothing(
        client, db, clock):
    customer, token = _announced(client, db, clock)

    page = client.get(f"/unsubscribe/{token}")

    assert page.status_code == 200
    assert f'<form method="post" action="/unsubscribe/{token}"' in page.text
    assert _subscribed(db, customer)
    done = client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert not _subscribed(db, customer)


def test_one_click_post_from_a_mail_system_needs_no_cookie_nor_form_token(client, db, clock):
    customer, token = _announced(client, db, clock)
    mail_system = TestClient(client.app, raise_server_exceptions=False)  # no cookies at all

    answer = mail_system.post(f"/unsubscribe/{token}", data=ONE_CLICK)

    assert answer.status_code == 200, answer.text
    assert not _subscribed(db, customer)


def test_a_forged_or_reused_link_is_refused_with_a_page_and_changes_nothing(client, db, clock):
    customer, token = _announced(client, db, clock)
    mail_system = TestClient(client.app, raise_server_exceptions=False)
    assert mail_system.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200
    before = snapshot(db)

    reused = mail_system.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    forged = mail_system.post(f"/unsubscribe/{token[:-2]}xx", data=ONE_CLICK)
    nonsense = mail_system.post("/unsubscribe/not-a-token", data=ONE_CLICK)
    used_page = mail_system.get(f"/unsubscribe/{token}")
    forged_page = mail_system.get(f"/unsubscribe/{token[:-2]}xx")

    assert reused.status_code == 409 and "was used already" in reused.text
    assert forged.status_code == 404 and "is not valid" in forged.text
    assert nonsense.status_code == 404
    assert used_page.status_code == 409 and "<form" not in used_page.text.split("<main")[-1]
    assert forged_page.status_code == 404 and "is not valid" in forged_page.text
    assert changed_tables(before, snapshot(db)) == []


def test_a_cross_site_post_is_still_refused_by_the_guard(client, db, clock):
    customer, token = _announced(client, db, clock)
    browser = TestClient(client.app, raise_server_exceptions=False)

    refused = browser.post(f"/unsubscribe/{token}", data=ONE_CLICK,
                           headers={"Sec-Fetch-Site": "cross-site"})

    assert refused.status_code == 403
    assert _subscribed(db, customer)


def test_the_account_page_opts_back_in_with_a_csrf_protected_form(client, db, clock):
    customer, token = _announced(client, db, clock)
    assert client.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200
    page = client.get("/account")
    assert "Send me news of drops again" in page.text and 'name="csrf_token"' in page.text
    forger = TestClient(client.app, raise_server_exceptions=False)
    forger.cookies.update(client.cookies)
    forger.cookies.delete("dl_csrf")

    forged = forger.post("/account/marketing", data={"choice": "in"})
    bad = client.post("/account/marketing", data={"choice": "maybe"})

    assert forged.status_code == 403 and not _subscribed(db, customer)
    assert bad.status_code == 422 and not _subscribed(db, customer)
    opted_in = client.post("/account/marketing", data={"choice": "in"}, follow_redirects=False)
    assert opted_in.status_code == 303 and _subscribed(db, customer)
    assert "Stop news of drops" in client.get("/account").text


def test_the_console_previews_every_template_in_a_sandboxed_frame_and_lists_the_outbox(
        client, db, clock):
    _announced(client, db, clock)
    sign_in_console(client, db, clock)

    page = client.get("/admin/mail")
    frame = client.get("/admin/mail/templates/drop_announcement.html")
    unknown = client.get("/admin/mail/templates/nope.html")
    outbox = client.get("/admin/mail/outbox")
    pending = client.get("/admin/mail/outbox?status=pending")
    sent = client.get("/admin/mail/outbox?status=sent")

    assert page.status_code == 200
    assert '<a href="/admin/mail"' in page.text  # in the console's navigation
    for name in ("order_confirmation", "shipped", "out_for_delivery", "delivered", "cancelled",
                 "refund_issued", "drop_announcement", "early_access_open", "waitlist_offer"):
        assert f'src="/admin/mail/templates/{name}.html" sandbox=""' in page.text
    assert "Your early access to Fig Leaf No. 3 is open now" in page.text  # the text version
    assert frame.status_code == 200 and "Fig Leaf No. 3" in frame.text
    csp = frame.headers["content-security-policy"]
    assert "default-src 'none'" in csp and csp.endswith("sandbox")
    assert "script-src" not in csp and frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert unknown.status_code == 404
    assert outbox.status_code == 200 and "drop_announcement" in outbox.text
    assert "drop_announcement" in pending.text and "drop_announcement" not in sent.text


def test_the_console_mail_pages_need_a_console_sign_in(client):
    for path in ("/admin/mail", "/admin/mail/outbox", "/admin/mail/templates/shipped.html"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code in (303, 307) and "/admin/login" in answer.headers["location"]


def test_the_api_reads_and_sets_marketing_mail_and_refuses_bad_input(client, db, clock):
    customer = sign_up(client)["id"]
    before = snapshot(db)

    bad = client.put("/api/v1/me/mail-preferences", json={"marketing": "sometimes"})
    missing = client.put("/api/v1/me/mail-preferences", json={})
    anonymous = TestClient(client.app, raise_server_exceptions=False).get(
        "/api/v1/me/mail-preferences")

    assert_problem(bad, 422) and assert_problem(missing, 422) and assert_problem(anonymous, 401)
    assert changed_tables(before, snapshot(db)) == []
    assert client.get("/api/v1/me/mail-preferences").json() == {"marketing": True}
    off = client.put("/api/v1/me/mail-preferences", json={"marketing": False})
    assert off.json() == {"marketing": False} and not _subscribed(db, customer)
    make_drop(db, clock, starts_in=60)  # announced to nobody: the only customer opted out
    with db.transaction() as session:
        assert session.scalars(select(MailOutboxItem)).all() == []
    on = client.put("/api/v1/me/mail-preferences", json={"marketing": True})
    assert on.json() == {"marketing": True} and _subscribed(db, customer)
