"""3-D Secure at the bank's own page, on the local provider (its 3-D Secure test card): the cart
checkout sent without JavaScript goes to the order's confirm page (``web.payment_confirm``),
whose button sends the browser to the provider's bank page (``/pay/local/authenticate``); the
bank's answer comes back to the order's payment return, which settles it by what the provider
says. Only the order's own customer gets there, and a wrong client secret decides nothing.
(On Stripe: ``tests/payments/test_stripe_no_javascript.py``.)"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from dropline.locations.models import StockLevel
from dropline.memberships import jobs
from dropline.memberships.models import (
    ChargeKind,
    ChargeStatus,
    Membership,
    MembershipCharge,
    MembershipPaymentMethod,
)
from dropline.memberships.rules import MembershipStatus
from dropline.orders.models import Order, OrderStatus
from tests.builders import PASSWORD, make_location, make_product, sign_up
from tests.memberships.support import CONFIG, join, make_tier
from tests.storefront.builders import CHECKOUT_FORM
from tests.web.support import browser_session, changed_tables, snapshot

THREE_D_SECURE = "pm_card_authenticationRequired"


def _held_order(client, db, clock) -> tuple[int, int]:
    """A cart checkout (the form, without the outbox) on the 3-D Secure card: the order id,
    once the page has sent the shopper to confirm it; and the variant (stock 3, 1 bought)."""
    make_location(db)
    _, variant_id = make_product(db, clock, stock=3)
    sign_up(client)
    client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})
    placed = client.post("/checkout", data={**CHECKOUT_FORM, "key": "k1",
                                            "payment_method": THREE_D_SECURE},
                         follow_redirects=False)
    assert placed.status_code == 303, placed.text
    location = placed.headers["location"]
    assert location.startswith("/orders/") and location.endswith("/confirm-payment")
    return int(location.split("/")[2]), variant_id


def _status(db) -> OrderStatus:
    with db.transaction() as session:
        return session.scalars(select(Order.status)).one()


def _to_the_bank(client, order_id: int) -> str:
    page = client.get(f"/orders/{order_id}/confirm-payment")
    assert page.status_code == 200
    assert f'action="/orders/{order_id}/bank-authentication"' in page.text
    sent = client.post(f"/orders/{order_id}/bank-authentication", follow_redirects=False)
    assert sent.status_code == 303
    return sent.headers["location"]


def test_a_payment_confirmed_at_the_bank_pays_the_order_on_return(client, db, clock):
    order_id, _ = _held_order(client, db, clock)
    assert _status(db) is OrderStatus.pending_payment

    bank = _to_the_bank(client, order_id)

    assert bank.startswith("/pay/local/authenticate?client_secret=ch_")
    query = parse_qs(urlsplit(bank).query)
    assert query["return_to"] == [f"/orders/{order_id}/payment-return"]
    assert client.get(bank).status_code == 200
    answered = client.post("/pay/local/authenticate", follow_redirects=False, data={
        "client_secret": query["client_secret"][0], "answer": "confirm",
        "return_to": query["return_to"][0]})
    assert answered.headers["location"] == f"/orders/{order_id}/payment-return"
    assert _status(db) is OrderStatus.pending_payment  # the shop learns it from the provider
    back = client.get(answered.headers["location"], follow_redirects=False)

    assert back.headers["location"] == f"/orders/{order_id}?placed=1"
    assert _status(db) is OrderStatus.paid
    # Decided: the confirm page and the button now lead to the order, and change nothing.
    settled = snapshot(db)
    assert client.get(f"/orders/{order_id}/confirm-payment",
                      follow_redirects=False).headers["location"] == f"/orders/{order_id}"
    client.post(f"/orders/{order_id}/bank-authentication", follow_redirects=False)
    assert changed_tables(settled, snapshot(db)) == []


def test_a_payment_refused_at_the_bank_fails_the_order_and_gives_the_unit_back(client, db,
                                                                              clock):
    order_id, variant_id = _held_order(client, db, clock)
    query = parse_qs(urlsplit(_to_the_bank(client, order_id)).query)

    client.post("/pay/local/authenticate", data={
        "client_secret": query["client_secret"][0], "answer": "refuse",
        "return_to": query["return_to"][0]})

    assert _status(db) is OrderStatus.payment_failed
    with db.transaction() as session:
        assert session.scalar(select(StockLevel.on_hand).where(
            StockLevel.variant_id == variant_id)) == 3


def test_a_wrong_client_secret_decides_nothing(client, db, clock):
    order_id, _ = _held_order(client, db, clock)
    query = parse_qs(urlsplit(_to_the_bank(client, order_id)).query)
    before = snapshot(db)

    forged = client.post("/pay/local/authenticate", data={
        "client_secret": query["client_secret"][0][:-2] + "00", "answer": "confirm",
        "return_to": query["return_to"][0]})

    assert forged.status_code == 409
    assert "This payment is no longer waiting for you." in forged.text
    assert changed_tables(before, snapshot(db)) == []
    assert _status(db) is OrderStatus.pending_payment


def test_another_customer_cannot_reach_the_orders_bank_page(client, db, clock):
    order_id, _ = _held_order(client, db, clock)
    with TestClient(client.app, raise_server_exceptions=False) as other:
        stranger = browser_session(other)
        sign_up(stranger)
        before = snapshot(db)
        page = stranger.get(f"/orders/{order_id}/confirm-payment", follow_redirects=False)
        sent = stranger.post(f"/orders/{order_id}/bank-authentication",
                             follow_redirects=False)

    assert page.status_code == 303 and page.headers["location"] == f"/orders/{order_id}"
    assert sent.status_code == 303 and sent.headers["location"] == f"/orders/{order_id}"
    assert changed_tables(before, snapshot(db)) == []


def test_a_renewal_held_for_the_member_is_confirmed_at_the_bank_without_javascript(client, db,
                                                                                 clock):
    """The dunning notice's page has the same button: the held renewal goes to the provider's
    bank page and, confirmed there, renews the membership on return."""
    provider = client.app.state.services.payments
    tier = make_tier(db, clock, price=900)
    me = sign_up(client)
    customer = me["id"]
    member = join(db, clock, provider, customer_id=customer, tier_id=tier)
    held = provider.save_card(card=provider.describe_card(THREE_D_SECURE)).token
    with db.transaction() as session:
        method_id = session.get(Membership, member).payment_method_id
        session.get(MembershipPaymentMethod, method_id).token = held
        clock.current = session.get(Membership, member).current_period_end + timedelta(minutes=1)
    jobs.renew_due(db, clock=clock, config=CONFIG, provider=provider)
    with db.transaction() as session:
        charge_id = session.scalars(select(MembershipCharge.id).where(
            MembershipCharge.kind == ChargeKind.renewal)).one()
    client.post("/sign-in", data={"email": me["email"], "password": PASSWORD})  # a month on

    page = client.get(f"/membership/charges/{charge_id}/authenticate")
    assert f'action="/membership/charges/{charge_id}/bank-authentication"' in page.text
    bank = client.post(f"/membership/charges/{charge_id}/bank-authentication",
                       follow_redirects=False).headers["location"]
    query = parse_qs(urlsplit(bank).query)
    answered = client.post("/pay/local/authenticate", follow_redirects=False, data={
        "client_secret": query["client_secret"][0], "answer": "confirm",
        "return_to": query["return_to"][0]})
    back = client.get(answered.headers["location"], follow_redirects=False)

    assert back.status_code == 303 and back.headers["location"] == "/membership?done=renewed"
    with db.transaction() as session:
        assert session.get(MembershipCharge, charge_id).status is ChargeStatus.succeeded
        assert session.get(Membership, member).status is MembershipStatus.active
