"""Sign-up tells no one whether an address has an account: a taken address gets the same
answer (status, body, page) as a new one, no session, and its owner is emailed instead."""

from __future__ import annotations

from sqlalchemy import func, select

from dropline.customers.models import Customer
from tests.accounts.support import form_sign_up, mails_to
from tests.builders import PASSWORD, sign_up
from tests.web.support import second_client

TAKEN = "taken@example.com"
FRESH = "fresh@example.com"


def test_api_sign_up_of_a_taken_address_answers_as_a_new_one_and_mails_the_owner(
        client, db, outbox, settings):
    sign_up(client, email=TAKEN)
    stranger, newcomer = second_client(client), second_client(client)

    taken = stranger.post("/api/v1/customers",
                          json={"email": TAKEN, "password": "a stranger's phrase"})
    fresh = newcomer.post("/api/v1/customers",
                          json={"email": FRESH, "password": "a newcomer's phrase"})

    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json()) == (
        202, fresh.json())
    assert settings.web.session_cookie_name not in taken.cookies
    assert stranger.get("/api/v1/me").status_code == 401
    assert newcomer.get("/api/v1/me").json()["email"] == FRESH
    [note] = mails_to(outbox, TAKEN)
    assert "already has one" in note.get_content() and "/forgot-password" in note.get_content()
    assert mails_to(outbox, FRESH) == []
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 2


def test_form_sign_up_of_a_taken_address_gets_the_same_redirect(client, outbox, settings):
    sign_up(client, email=TAKEN)
    stranger, newcomer = second_client(client), second_client(client)

    taken = form_sign_up(stranger, TAKEN, "a stranger's phrase")
    fresh = form_sign_up(newcomer, FRESH, "a newcomer's phrase")

    assert taken.status_code == fresh.status_code == 303
    assert taken.headers["location"] == fresh.headers["location"] == "/account"
    assert taken.text == fresh.text
    assert settings.web.session_cookie_name not in taken.cookies
    assert len(mails_to(outbox, TAKEN)) == 1


def test_a_weak_password_is_refused_alike_for_taken_and_new_addresses(client, outbox):
    sign_up(client, email=TAKEN)

    taken = client.post("/api/v1/customers", json={"email": TAKEN, "password": "1234567890"})
    fresh = client.post("/api/v1/customers", json={"email": FRESH, "password": "1234567890"})

    assert taken.status_code == fresh.status_code == 422
    assert taken.json() == fresh.json()
    assert mails_to(outbox, TAKEN) == []


def test_the_owner_of_a_taken_address_keeps_their_password(client):
    sign_up(client, email=TAKEN)
    second_client(client).post("/api/v1/customers",
                               json={"email": TAKEN, "password": "a stranger's phrase"})

    signed_in = client.post("/api/v1/sessions", json={"email": TAKEN, "password": PASSWORD})

    assert signed_in.status_code == 200
