"""Password hashing (argon2id), opaque tokens (only their SHA-256 is stored), and sealing:
secrets the app must read back (a staff member's TOTP key) encrypted at rest under a key
derived from the app's secret key."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
# Verified against when the email is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("dropline-timing-equaliser")


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Swap the argon2 parameters (the test suite uses the cheapest ones: hashes carry their
    own parameters, so the same code path verifies them). Production keeps the defaults."""
    global _hasher, _DUMMY_HASH
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("dropline-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


SEALED_PREFIX = "v1:"


class Unsealable(ValueError):
    """Not a sealed value, or sealed under another secret key (the key was changed)."""


def _fernet(secret_key: str, purpose: str) -> Fernet:
    # HKDF gives each purpose its own key: a value sealed for one use opens for no other.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=f"dropline seal: {purpose}".encode()).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plaintext: str, *, secret_key: str, purpose: str) -> str:
    """Encrypts and authenticates ``plaintext`` (Fernet: AES-128-CBC and HMAC-SHA256) under a
    key derived from the app's secret key and the ``purpose``; about 140 characters for a
    32-character secret."""
    token = _fernet(secret_key, purpose).encrypt(plaintext.encode())
    return SEALED_PREFIX + token.decode("ascii")


def seal_at(plaintext: str, *, secret_key: str, purpose: str, at: datetime) -> str:
    """``seal`` stamped with ``at`` (the injectable clock's now), for a value that is opened
    only within a short time of being sealed (``unseal_within``)."""
    token = _fernet(secret_key, purpose).encrypt_at_time(plaintext.encode(), int(at.timestamp()))
    return SEALED_PREFIX + token.decode("ascii")


def unseal_within(sealed: str, *, secret_key: str, purpose: str, at: datetime,
                  max_age: timedelta) -> str:
    """Opens a value sealed by ``seal_at`` no more than ``max_age`` before ``at``; raises
    ``Unsealable`` for one older (or sealed in the future), tampered with or sealed under
    another key or purpose."""
    if not is_sealed(sealed):
        raise Unsealable("not a sealed value")
    try:
        return _fernet(secret_key, purpose).decrypt_at_time(
            sealed[len(SEALED_PREFIX):].encode(), int(max_age.total_seconds()),
            int(at.timestamp())).decode()
    except InvalidToken as exc:
        raise Unsealable("expired, or sealed under another secret key") from exc


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def unseal(sealed: str, *, secret_key: str, purpose: str) -> str:
    if not is_sealed(sealed):
        raise Unsealable("not a sealed value")
    try:
        return _fernet(secret_key, purpose).decrypt(sealed[len(SEALED_PREFIX):].encode()).decode()
    except InvalidToken as exc:
        raise Unsealable("sealed under another secret key") from exc
