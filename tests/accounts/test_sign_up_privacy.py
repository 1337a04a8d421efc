"""Sign-up tells no one whether an address has an account, through the answer or beside it:
a taken address gets the same status, body, headers (no session cookie either way) and page as
a new one, after the same password hashing and one email each. The account of a new address
exists only once the emailed link is used; the owner of a taken one is mailed a note."""

from __future__ import annotations

from urllib.parse import unquote

from sqlalchemy import func, select

from dropline.customers.models import Customer, SignUpRequest
from dropline.security import token_digest
from tests.accounts.support import form_sign_up, mails_to, sign_up_token
from tests.builders import PASSWORD, sign_up
from tests.web.support import assert_problem, second_client

TAKEN = "taken@example.com"
FRESH = "fresh@example.com"
# Headers that differ between any two answers whatever they say.
VARYING = {"date", "content-length", "x-request-id"}


def _headers(response) -> dict[str, list[str]]:
    return {name: response.headers.get_list(name) for name in response.headers
            if name not in VARYING}


def _customers(db) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Customer)) or 0)


def test_api_sign_up_of_a_taken_address_answers_as_a_new_one_and_mails_the_owner(
        client, db, outbox, settings):
    sign_up(client, email=TAKEN)
    stranger, newcomer = second_client(client), second_client(client)

    taken = stranger.post("/api/v1/customers",
                          json={"email": TAKEN, "password": "a stranger's phrase"})
    fresh = newcomer.post("/api/v1/customers",
                          json={"email": FRESH, "password": "a newcomer's phrase"})

    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())
    assert taken.status_code == 202
    assert _headers(taken) == _headers(fresh)
    assert "set-cookie" not in taken.headers and "set-cookie" not in fresh.headers
    assert stranger.get("/api/v1/me").status_code == newcomer.get("/api/v1/me").status_code \
        == 401
    [note] = mails_to(outbox, TAKEN, about="tried")
    assert "already has one" in note.get_content() and "/forgot-password" in note.get_content()
    [link] = mails_to(outbox, FRESH)
    assert "/sign-up/confirm?token=" in link.get_content()
    assert _customers(db) == 1  # no account for the new address until its link is used


def test_the_emailed_link_creates_the_account_once_and_signs_it_in(client, db, outbox,
                                                                    settings):
    client.post("/api/v1/customers", json={"email": FRESH, "password": PASSWORD})
    token = unquote(sign_up_token(mails_to(outbox, FRESH)[-1]))
    with db.transaction() as session:
        stored = session.scalar(select(SignUpRequest.token_hash))
    assert stored == token_digest(token)

    confirmed = client.post("/api/v1/customers/confirmations", json={"token": token})

    assert confirmed.status_code == 201 and confirmed.json()["email"] == FRESH
    assert settings.web.session_cookie_name in confirmed.cookies
    assert client.get("/api/v1/me").json()["email"] == FRESH
    again = second_client(client).post("/api/v1/customers/confirmations", json={"token": token})
    assert_problem(again, 422)
    assert _customers(db) == 1


def test_a_sign_up_link_expires(client, db, clock, outbox, settings):
    client.post("/api/v1/customers", json={"email": FRESH, "password": PASSWORD})
    token = unquote(sign_up_token(mails_to(outbox, FRESH)[-1]))

    clock.advance(minutes=settings.web.sign_up_link_minutes, seconds=1)

    assert_problem(client.post("/api/v1/customers/confirmations", json={"token": token}), 422)
    assert _customers(db) == 0


def test_two_links_for_one_address_make_one_account(client, db, outbox):
    for phrase in ("a first fine phrase", "a second fine phrase"):
        second_client(client).post("/api/v1/customers", json={"email": FRESH, "password": phrase})
    first, second = (unquote(sign_up_token(m)) for m in mails_to(outbox, FRESH))

    assert client.post("/api/v1/customers/confirmations", json={"token": second}
                       ).status_code == 201
    late = second_client(client).post("/api/v1/customers/confirmations", json={"token": first})

    assert_problem(late, 409)
    assert _customers(db) == 1
    assert client.post("/api/v1/sessions", json={
        "email": FRESH, "password": "a second fine phrase"}).status_code == 200


def test_form_sign_up_of_a_taken_address_gets_the_same_answer(client, outbox, settings):
    sign_up(client, email=TAKEN)
    stranger, newcomer = second_client(client), second_client(client)

    taken = form_sign_up(stranger, TAKEN, "a stranger's phrase")
    fresh = form_sign_up(newcomer, FRESH, "a newcomer's phrase")

    assert taken.status_code == fresh.status_code == 303
    assert taken.headers["location"] == fresh.headers["location"] == "/sign-up/sent"
    assert taken.text == fresh.text
    assert _headers(taken) == _headers(fresh)
    assert "set-cookie" not in taken.headers and "set-cookie" not in fresh.headers
    assert len(mails_to(outbox, TAKEN, about="tried")) == 1
    page = newcomer.get("/sign-up/sent")
    assert page.status_code == 200 and "Check your email" in page.text


def test_the_form_link_confirms_with_a_button_and_signs_in(client, db, outbox, settings):
    client.post("/sign-up", data={"email": FRESH, "password": PASSWORD, "next": "/cart"})
    token = sign_up_token(mails_to(outbox, FRESH)[-1])
    assert "&next=/cart" in mails_to(outbox, FRESH)[-1].get_content()

    page = client.get(f"/sign-up/confirm?token={token}&next=/cart")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert _customers(db) == 0  # opening the link (a mail scanner may) changes nothing
    done = client.post("/sign-up/confirm", data={"token": unquote(token), "next": "/cart"},
                       follow_redirects=False)

    assert done.status_code == 303 and done.headers["location"] == "/cart"
    assert settings.web.session_cookie_name in done.cookies
    spent = client.post("/sign-up/confirm", data={"token": unquote(token)},
                        follow_redirects=False)
    assert spent.status_code == 422 and "invalid, used or expired" in spent.text


def test_a_weak_password_is_refused_alike_for_taken_and_new_addresses(client, outbox):
    sign_up(client, email=TAKEN)

    taken = client.post("/api/v1/customers", json={"email": TAKEN, "password": "1234567890"})
    fresh = client.post("/api/v1/customers", json={"email": FRESH, "password": "1234567890"})

    assert taken.status_code == fresh.status_code == 422
    assert taken.json() == fresh.json()
    assert mails_to(outbox, TAKEN, about="tried") == [] and mails_to(outbox, FRESH) == []


def test_the_owner_of_a_taken_address_keeps_their_password(client):
    sign_up(client, email=TAKEN)
    second_client(client).post("/api/v1/customers",
                               json={"email": TAKEN, "password": "a stranger's phrase"})

    signed_in = client.post("/api/v1/sessions", json={"email": TAKEN, "password": PASSWORD})

    assert signed_in.status_code == 200
