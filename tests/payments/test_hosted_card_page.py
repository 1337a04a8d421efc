"""The local provider's hosted card page (``/pay/local/card``), the no-JavaScript way to give a
card: a shop form sent without a payment method goes there, the card is tokenised by the
provider and the browser comes back to the shop's page with the reference only. It sends the
shopper back to this site only, and a refused card is said beside its field with nothing
kept. (The whole walk in Chromium is ``tests/e2e/test_member_portal.py``.)"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dropline.payments.models import LocalProviderCharge
from tests.builders import sign_up
from tests.memberships.support import make_tier
from tests.web.support import changed_tables, snapshot

CARD = {"number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}


def test_a_join_sent_without_a_payment_method_goes_to_the_hosted_card_page(client, db, clock):
    tier = make_tier(db, clock, slug="friends", price=900)
    sign_up(client)
    before = snapshot(db)

    response = client.post("/membership/join", data={"tier_id": tier, "key": "k1",
                                                     "payment_method": ""},
                           follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == (
        f"/pay/local/card?return_to=%2Fmembership%3Fjoin%3D{tier}")
    assert changed_tables(before, snapshot(db)) == []


def test_the_card_comes_back_to_the_shop_as_a_reference_only(client, db, clock):
    tier = make_tier(db, clock, slug="friends", price=900)
    sign_up(client)

    response = client.post("/pay/local/card", follow_redirects=False,
                           data={**CARD, "return_to": f"/membership?join={tier}"})

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(f"/membership?join={tier}&payment_method=pm_")
    assert "4242" not in location
    page = client.get(location)
    assert "Card ending 4242, given to the payment provider." in page.text
    reference = location.rsplit("=", 1)[1]
    assert f'name="payment_method" value="{reference}"' in page.text
    with db.transaction() as session:
        token = session.scalar(select(LocalProviderCharge).where(
            LocalProviderCharge.reference == reference))
        assert token is not None and token.kind == "card" and token.card_last4 == "4242"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil",
                                    "membership"])
def test_the_page_sends_the_shopper_back_to_this_site_only(client, target):
    response = client.post("/pay/local/card", data={**CARD, "return_to": target},
                           follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/?payment_method=pm_")


@pytest.mark.parametrize("card, field, message", [
    ({"number": "4000 0000 0000 0003"}, "number", "the card number is not valid"),
    ({"exp_month": "13"}, "exp_month", "the expiry date is not valid"),
    ({"cvc": "12a"}, "cvc", "the CVC is not valid"),
])
def test_a_refused_card_is_said_beside_its_field_and_nothing_is_kept(client, db, card, field,
                                                                     message):
    before = snapshot(db)

    response = client.post("/pay/local/card", data={**CARD, **card, "return_to": "/membership"})

    assert response.status_code == 422
    assert f'<span class="error field-error" id="{field}-error" role="alert">{message}</span>' \
        in response.text
    assert "4000 0000 0000 0003" not in response.text
    assert changed_tables(before, snapshot(db)) == []
