"""Money for people to read: integer minor units and an ISO 4217 code to a display string.

The one formatter behind the templates' ``money`` filter, the emails, the CLI tables and the
generated playbooks, so an amount reads the same everywhere."""

from __future__ import annotations

__all__ = ["format_money"]

SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def format_money(amount: int, currency: str = "GBP") -> str:
    """-150 GBP -> "-£1.50"; a currency without a symbol here is written after the amount
    ("1,234.50 SEK"). Two-decimal currencies."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    symbol = SYMBOLS.get(currency)
    major = f"{units:,}.{cents:02d}"
    return f"{sign}{symbol}{major}" if symbol else f"{sign}{major} {currency}"
