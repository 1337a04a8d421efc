"""Money for people to read and type: integer minor units and an ISO 4217 code to a display
string, and an amount a person typed ("12.50") to minor units.

The one formatter behind the templates' ``money`` filter, the emails, the CLI tables and the
generated playbooks, so an amount reads the same everywhere."""

from __future__ import annotations

import re

__all__ = ["format_money", "parse_major"]
__all__ = ["format_money", "parse_money"]

SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def format_money(amount: int, currency: str = "GBP") -> str:
    """-150 GBP -> "-£1.50"; a currency without a symbol here is written after the amount
    ("1,234.50 SEK"). Two-decimal currencies."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    symbol = SYMBOLS.get(currency)
    major = f"{units:,}.{cents:02d}"
    return f"{sign}{symbol}{major}" if symbol else f"{sign}{major} {currency}"


_MAJOR = re.compile(r"(\d{1,10})(?:[.,](\d{1,2}))?")


def parse_major(text: str) -> int:
    """"12.50", "12,5" or "12" (two-decimal currencies, a symbol and spaces ignored) to
    minor units; ValueError for anything else (negative amounts included)."""
    cleaned = text.strip().lstrip("£€$").replace(" ", "")
    match = _MAJOR.fullmatch(cleaned)
    if not match:
        raise ValueError(f"not an amount: {text!r}")
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
_AMOUNT = re.compile(r"(\d{1,9})(?:\.(\d{1,2}))?")


def parse_money(text: str) -> int:
    """What a person types in a form to minor units: "12", "12.5", "12.50", "£1,012.50" ->
    101250 (two-decimal currencies). Raises ValueError for anything else (a negative amount,
    three decimals, letters)."""
    cleaned = text.strip().replace(",", "").lstrip("".join(SYMBOLS.values())).strip()
    found = _AMOUNT.fullmatch(cleaned)
    if found is None:
        raise ValueError(f"not an amount: {text!r}")
    units, cents = found.group(1), (found.group(2) or "0").ljust(2, "0")
    return int(units) * 100 + int(cents)
