"""The password policy: the one rule every password goes through, whoever sets it (sign-up,
password change, reset by email, console users, the CLI).

A password is refused when it is what an attacker tries first: shorter than ``MIN_LENGTH``;
on the bundled list of ~20,000 common passwords (``data/common-passwords.txt.gz``), also once
lower-cased, with common letter substitutions undone (``p@ssw0rd``) and with digits and
symbols trimmed from its ends (``Password123!``) or typed twice; one character repeated or a keyboard or
alphabet run (``1234567890``, ``qwertyuiop``); or built from the account's own email address.
Pure rules over strings: the list is read once, from the package, on first use."""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources

from dropline.errors import InvalidInput

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "WeakPassword", "check_password", "password_problem"]

MIN_LENGTH = 10
MAX_LENGTH = 200
# Runs an attacker's list generator walks: digits, the alphabet and keyboard rows.
_RUNS = ("01234567890", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm",
         "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "qazwsxedcrfvtgbyhnujmikolp")
_UNLEET = str.maketrans({"@": "a", "4": "a", "8": "b", "3": "e", "1": "i", "!": "i",
                         "0": "o", "$": "s", "5": "s", "7": "t", "+": "t"})
_EDGE = "0123456789!@#$%^&*()-_=+.,;:?~ "


class WeakPassword(InvalidInput):
    slug = "weak-password"
    title = "Password too weak"


@cache
def _common() -> frozenset[str]:
    data = resources.files("dropline").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def _is_run(text: str) -> bool:
    """One character repeated, or a stretch of a run read forwards or backwards."""
    if len(set(text)) <= 2:
        return True
    return any(text in run or text in run[::-1] for run in _RUNS)


def _variants(lowered: str) -> set[str]:
    trimmed = lowered.strip(_EDGE)
    found = {lowered, trimmed, lowered.translate(_UNLEET), trimmed.translate(_UNLEET),
             lowered.translate(_UNLEET).strip(_EDGE), lowered.replace(" ", "")}
    # A common word typed twice ("trustno1trustno1") is as guessable as the word.
    return found | {v[:len(v) // 2] for v in found if len(v) % 2 == 0 and v[:len(v) // 2] * 2 == v}


def password_problem(password: str, *, email: str = "") -> str | None:
    """Why ``password`` is refused for the account of ``email``, or None if it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    local = email.strip().lower().partition("@")[0]
    if len(local) >= 3 and (local in lowered or lowered in email.lower()):
        return "Don't build your password from your email address."
    variants = {v for v in _variants(lowered) if v}
    if any(_is_run(v) for v in variants):
        return "That password is a simple pattern (a repeated character or a keyboard run)."
    if variants & _common():
        return "That password is one of the most common ones; choose another."
    return None


def check_password(password: str, *, email: str = "", field: str = "password") -> str:
    """Returns the password, or raises ``WeakPassword`` (422) naming the form ``field``."""
    problem = password_problem(password, email=email)
    if problem is not None:
        raise WeakPassword(problem, field=field)
    return password
