"""Accounts: argon2 hashes, cookie sessions that only the digest of is stored."""

from sqlalchemy import select

from dropline.customers.models import Customer, CustomerSession
from dropline.security import token_digest
from tests.builders import PASSWORD, sign_up, sign_up_token


def test_password_is_stored_as_an_argon2id_hash(client, db):
    sign_up(client, email="hash@example.com")
    with db.transaction() as session:
        stored = session.scalar(select(Customer.password_hash))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_session_cookie_is_httponly_and_only_its_digest_is_stored(client, db, settings):
    client.post("/api/v1/customers", json={"email": "c@example.com", "password": PASSWORD})
    response = client.post("/api/v1/customers/confirmations",
                           json={"token": sign_up_token(client, "c@example.com")})
    cookie = response.cookies[settings.web.session_cookie_name]
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    with db.transaction() as session:
        assert session.scalar(select(CustomerSession.token_hash)) == token_digest(cookie)


def test_email_is_unique_case_insensitively(client, db):
    sign_up(client, email="Same@Example.com")
    client.cookies.clear()
    again = client.post("/api/v1/customers",
                        json={"email": "same@example.COM", "password": PASSWORD})
    assert again.status_code == 202  # the same answer as a new address (tests/accounts)
    with db.transaction() as session:
        assert session.scalars(select(Customer.email)).all() == ["same@example.com"]


def test_sign_in_returns_the_customer_and_me_works(client):
    sign_up(client, email="me@example.com", acquisition_source="pop-up")
    client.cookies.clear()
    assert client.get("/api/v1/me").status_code == 401

    login = client.post("/api/v1/sessions", json={"email": "me@example.com", "password": PASSWORD})

    assert login.status_code == 200
    me = client.get("/api/v1/me").json()
    assert me["email"] == "me@example.com" and me["acquisition_source"] == "pop-up"


def test_expired_session_is_refused(client, clock, settings):
    sign_up(client)
    clock.advance(days=settings.web.session_days + 1)
    assert client.get("/api/v1/me").status_code == 401
