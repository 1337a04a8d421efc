"""The console's TOTP keys are sealed at rest: the column holds ciphertext under a key derived
from the app's secret key, never the base32 secret an authenticator holds; the migration
seals keys stored before, and its downgrade opens them again."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from dropline.admin.models import AdminUser
from dropline.admin.service import TOTP_PURPOSE
from dropline.db import make_engine
from dropline.migrate import downgrade, upgrade
from dropline.security import Unsealable, is_sealed, seal, unseal
from tests.builders import sign_in_console


def test_an_enrolled_secret_is_stored_sealed_and_still_gives_codes(client, db, clock, settings):
    sign_in_console(client, db, clock)
    page = client.post("/admin/security/totp")
    secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', page.text).group(1)

    with db.transaction() as session:
        stored = session.scalar(select(AdminUser.totp_secret))
    assert stored is not None and is_sealed(stored)
    assert secret not in stored
    assert unseal(stored, secret_key=settings.web.secret_key, purpose=TOTP_PURPOSE) == secret
    confirmed = client.post("/admin/security/totp/confirm",
                            data={"code": pyotp.TOTP(secret).at(clock.now())})
    assert confirmed.status_code == 200, confirmed.text


def test_a_sealed_secret_opens_under_no_other_key_or_purpose():
    sealed = seal("JBSWY3DPEHPK3PXP", secret_key="the app's key", purpose=TOTP_PURPOSE)

    assert unseal(sealed, secret_key="the app's key", purpose=TOTP_PURPOSE) == \
        "JBSWY3DPEHPK3PXP"
    with pytest.raises(Unsealable):
        unseal(sealed, secret_key="another key", purpose=TOTP_PURPOSE)
    with pytest.raises(Unsealable):
        unseal(sealed, secret_key="the app's key", purpose="something else")
    with pytest.raises(Unsealable):
        unseal("JBSWY3DPEHPK3PXP", secret_key="the app's key", purpose=TOTP_PURPOSE)


def test_the_migration_seals_existing_secrets_and_its_downgrade_opens_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROPLINE_SECRET_KEY", "migration test key")
    url = f"sqlite:///{tmp_path / 'seal.db'}"
    upgrade(url, "0011_accounts")
    engine = make_engine(url)
    users = sa.table("admin_users", sa.column("email", sa.String()),
                     sa.column("totp_secret", sa.String()), sa.column("name", sa.String()),
                     sa.column("password_hash", sa.String()), sa.column("created_at"))
    try:
        with engine.begin() as conn:
            conn.execute(users.insert(), [
                {"email": "a@brand.example", "name": "", "password_hash": "x",
                 "created_at": datetime(2026, 1, 1, tzinfo=UTC), "totp_secret": "JBSWY3DPEHPK3PXP"},
                {"email": "b@brand.example", "name": "", "password_hash": "x",
                 "created_at": datetime(2026, 1, 1, tzinfo=UTC), "totp_secret": None}])

        upgrade(url, "sec_0014_totp_sealed")
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.select(users.c.email, users.c.totp_secret)).all())
        assert stored["b@brand.example"] is None
        assert is_sealed(stored["a@brand.example"])
        assert unseal(stored["a@brand.example"], secret_key="migration test key",
                      purpose=TOTP_PURPOSE) == "JBSWY3DPEHPK3PXP"

        downgrade(url, "0011_accounts")
        with engine.connect() as conn:
            opened = dict(conn.execute(sa.select(users.c.email, users.c.totp_secret)).all())
        assert opened == {"a@brand.example": "JBSWY3DPEHPK3PXP", "b@brand.example": None}
    finally:
        engine.dispose()
