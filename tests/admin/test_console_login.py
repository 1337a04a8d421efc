"""The console: admins sign in in the browser; every console page refuses everyone else."""

from sqlalchemy import select

from dropline.admin.models import AdminSession
from dropline.admin.service import create_admin_user
from dropline.web.admin import ADMIN_COOKIE

PASSWORD = "console password 1"


def _admin(db, clock, email="ops@brand.example"):
    with db.transaction() as session:
        create_admin_user(session, clock=clock, email=email, password=PASSWORD)


def _sign_in(client, email="ops@brand.example", password=PASSWORD, next="/admin"):
    return client.post("/admin/login", data={"email": email, "password": password, "next": next},
                       follow_redirects=False)


def test_every_console_page_redirects_anonymous_visitors_to_login(client):
    for item in client.app.state.navigation:
        response = client.get(item.path, follow_redirects=False)
        assert response.status_code == 303, item.path
        assert response.headers["location"].startswith("/admin/login?next=")


def test_admin_signs_in_and_sees_the_overview_privately(client, db, clock):
    _admin(db, clock)

    signed_in = _sign_in(client)
    overview = client.get("/admin")

    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin"
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert overview.status_code == 200 and "Paid orders" in overview.text
    assert overview.headers["cache-control"] == "private, no-store"


def test_wrong_password_is_401_with_a_message_and_no_session(client, db, clock):
    _admin(db, clock)

    response = _sign_in(client, password="not the password")

    assert response.status_code == 401 and "Wrong email or password" in response.text
    assert ADMIN_COOKIE not in response.cookies
    with db.transaction() as session:
        assert session.scalar(select(AdminSession)) is None


def test_login_never_redirects_off_site(client, db, clock):
    _admin(db, clock)
    for target in ("https://evil.example/", "//evil.example", "/admin//evil"):
        assert _sign_in(client, next=target).headers["location"] == "/admin"


def test_sign_out_revokes_the_session(client, db, clock):
    _admin(db, clock)
    _sign_in(client)
    token = client.cookies.get(ADMIN_COOKIE)

    client.post("/admin/logout", follow_redirects=False)
    client.cookies.set(ADMIN_COOKIE, token, path="/admin")

    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_console_session_expires(client, db, clock):
    _admin(db, clock)
    _sign_in(client)
    clock.advance(hours=13)
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_a_customer_session_is_not_a_console_session(client, db, clock):
    from tests.builders import sign_up

    sign_up(client)
    assert client.get("/admin", follow_redirects=False).status_code == 303
