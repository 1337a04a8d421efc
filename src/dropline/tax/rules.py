"""Pure VAT rules: which rate applies, how much of an amount is tax, the breakdown of an
order, and what part of a refund is tax. Amounts are integer minor units; rates are basis
points (2000 = 20 %). No session, no clock.

- **Prices entered with or without tax** (a shop setting): with (UK/EU style) the tax is the
  part of the price ``price x r / (1 + r)``; without (US style) it is added, ``price x r``.
  Each line is rounded half up on its own, so every line's tax is exact on the receipt.
- **The rate** is the destination country's rate for the product's tax class on the day of the
  sale (the latest rate whose ``valid_from`` is on or before it). A destination with no rates
  (outside the UK and the EU) is an export: zero-rated. ``exempt`` goods carry no VAT.
- **Delivery** is taxed at the destination's standard rate.
- **Reverse charge**: a business buyer with a valid VAT number in another country than the
  shop's (both with rates: the UK or an EU state) pays no VAT; the buyer accounts for it. The
  invoice says so.
- **Refunds** reverse tax in proportion to the amount refunded.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

__all__ = [
    "LineTax",
    "RateRow",
    "TaxBreakdown",
    "TaxClass",
    "TaxLine",
    "TaxTable",
    "breakdown",
    "line_tax",
    "rate_for",
    "refund_tax",
    "tax_in",
]


class TaxClass(enum.StrEnum):
    standard = "standard"
    reduced = "reduced"
    zero = "zero"
    exempt = "exempt"


@dataclass(frozen=True)
class RateRow:
    country: str
    tax_class: TaxClass
    rate_bp: int
    valid_from: date


def rate_for(rows: Iterable[RateRow], *, country: str, tax_class: TaxClass,
             on: date) -> int | None:
    """The rate in force on ``on``; None when the country has no rate for the class then.
    ``exempt`` and ``zero`` are 0 wherever the country has rates."""
    rows = list(rows)
    if tax_class in (TaxClass.exempt, TaxClass.zero):
        return 0 if any(r.country == country for r in rows) else None
    live = [r for r in rows if r.country == country and r.tax_class is tax_class
            and r.valid_from <= on]
    return max(live, key=lambda r: r.valid_from).rate_bp if live else None


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def tax_in(amount: int, rate_bp: int, *, prices_include_tax: bool) -> int:
    """The tax on ``amount``: the part of it (prices include tax) or on top of it."""
    if rate_bp <= 0 or amount <= 0:
        return 0
    if prices_include_tax:
        return _half_up(amount * rate_bp, 10_000 + rate_bp)
    return _half_up(amount * rate_bp, 10_000)


@dataclass(frozen=True)
class TaxLine:
    """What is taxed: an amount after discounts, and its class."""

    amount: int
    tax_class: TaxClass


@dataclass(frozen=True)
class LineTax:
    tax_class: TaxClass
    rate_bp: int
    tax_amount: int


@dataclass(frozen=True)
class TaxBreakdown:
    country: str
    prices_include_tax: bool
    reverse_charge: bool
    lines: tuple[LineTax, ...]
    shipping: LineTax

    @property
    def tax_amount(self) -> int:
        return sum(line.tax_amount for line in self.lines) + self.shipping.tax_amount

    @property
    def added_amount(self) -> int:
        """What tax adds to the total: nothing when prices include it."""
        return 0 if self.prices_include_tax else self.tax_amount

    def by_rate(self) -> list[tuple[int, int]]:
        """(rate, tax) per rate, highest rate first: the receipt's VAT summary."""
        totals: dict[int, int] = {}
        for line in (*self.lines, self.shipping):
            totals[line.rate_bp] = totals.get(line.rate_bp, 0) + line.tax_amount
        return sorted(totals.items(), reverse=True)


def line_tax(rows: Sequence[RateRow], *, amount: int, tax_class: TaxClass, country: str,
             on: date, prices_include_tax: bool, reverse_charge: bool = False) -> LineTax:
    """The tax of one amount of goods of ``tax_class`` sent to ``country`` on ``on``."""
    rate = 0 if reverse_charge else (rate_for(rows, country=country, tax_class=tax_class,
                                              on=on) or 0)
    return LineTax(tax_class, rate, tax_in(amount, rate, prices_include_tax=prices_include_tax))


def breakdown(rows: Sequence[RateRow], *, lines: Sequence[TaxLine], shipping_amount: int,
              country: str, on: date, prices_include_tax: bool,
              reverse_charge: bool = False) -> TaxBreakdown:
    """The tax of each line and of delivery, for goods sent to ``country`` on ``on``."""

    def tax(amount: int, tax_class: TaxClass) -> LineTax:
        return line_tax(rows, amount=amount, tax_class=tax_class, country=country, on=on,
                        prices_include_tax=prices_include_tax, reverse_charge=reverse_charge)

    return TaxBreakdown(country, prices_include_tax, reverse_charge,
                        tuple(tax(line.amount, line.tax_class) for line in lines),
                        tax(shipping_amount, TaxClass.standard))


class TaxTable:
    """Rates and product tax classes read once, for many orders of the same few products
    (a drop's batch of purchases, where every price is fixed): each distinct line (product,
    amount, destination, day) is taxed once and the result reused, so a batch of n orders
    costs the arithmetic of its distinct lines, not n breakdowns. Pure: the caller reads the
    rows and classes. Business buyers (reverse charge) go through ``breakdown``."""

    def __init__(self, rows: Sequence[RateRow], classes: dict[int, TaxClass], *,
                 prices_include_tax: bool) -> None:
        self._rows, self._classes = tuple(rows), dict(classes)
        self.prices_include_tax = prices_include_tax
        self._memo: dict[tuple[str, date, TaxClass, int], LineTax] = {}

    def _tax(self, tax_class: TaxClass, amount: int, country: str, on: date) -> LineTax:
        key = (country, on, tax_class, amount)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = line_tax(
                self._rows, amount=amount, tax_class=tax_class, country=country, on=on,
                prices_include_tax=self.prices_include_tax)
        return found

    def breakdown(self, *, lines: Sequence[tuple[int, int]], shipping_amount: int,
                  country: str, on: date) -> TaxBreakdown:
        """``lines``: (product id, amount after discounts) in order; products not read in
        are standard-rated."""
        return TaxBreakdown(
            country, self.prices_include_tax, False,
            tuple(self._tax(self._classes.get(product_id, TaxClass.standard), amount,
                            country, on) for product_id, amount in lines),
            self._tax(TaxClass.standard, shipping_amount, country, on))


def refund_tax(refund_amount: int, *, total_amount: int, tax_amount: int) -> int:
    """The tax part of a refund: the order's tax in proportion to the amount refunded."""
    if total_amount <= 0:
        return 0
    return _half_up(tax_amount * refund_amount, total_amount)


def is_reverse_charge(*, shop_country: str, buyer_country: str, vat_number_valid: bool,
                      countries_with_rates: Iterable[str]) -> bool:
    known = set(countries_with_rates)
    return (vat_number_valid and buyer_country != shop_country
            and buyer_country in known and shop_country in known)
