"""VAT rates (the shipped table plus the shop's own rows), product tax classes, VAT number
checks, and the tax of a priced cart. Services flush, never commit."""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.gb import vat as gb_vat

from dropline.clock import Clock
from dropline.errors import InvalidInput
from dropline.tax.models import ProductTaxClass, TaxRate
from dropline.tax.ports import VatNumber, VatNumberChecker
from dropline.tax.rules import (
    RateRow,
    TaxBreakdown,
    TaxClass,
    TaxLine,
    TaxTable,
    breakdown,
    is_reverse_charge,
)

__all__ = [
    "OFFLINE",
    "OfflineVatChecker",
    "VatNumber",
    "check_vat_number",
    "rate_rows",
    "set_rate",
    "set_tax_class",
    "shipped_rates",
    "tax_classes_of",
    "tax_for",
    "tax_table",
]


@functools.cache
def shipped_rates() -> tuple[RateRow, ...]:
    """The UK and EU-27 rates shipped with Dropline (``dropline/data/vat_rates.csv``)."""
    text = resources.files("dropline.data").joinpath("vat_rates.csv").read_text("utf-8")
    return tuple(RateRow(row["country"], TaxClass(row["tax_class"]),
                         int(Decimal(row["rate_percent"]) * 100),
                         date.fromisoformat(row["valid_from"]))
                 for row in csv.DictReader(text.splitlines()))


def rate_rows(session: Session) -> list[RateRow]:
    """The shipped rates with the shop's own rows: a shop row replaces a shipped one of the
    same country, class and date, and adds any other."""
    own = [RateRow(r.country, r.tax_class, r.rate_bp, r.valid_from)
           for r in session.scalars(select(TaxRate))]
    keys = {(r.country, r.tax_class, r.valid_from) for r in own}
    return [r for r in shipped_rates() if (r.country, r.tax_class, r.valid_from) not in keys
            ] + own


def set_rate(session: Session, *, clock: Clock, country: str, tax_class: TaxClass,
             rate_percent: str, valid_from: date) -> TaxRate:
    """A rate for a country and class from a date (a new rate, or a correction of one)."""
    country = country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidInput("a country is two letters (ISO 3166), e.g. DE", field="country")
    if tax_class in (TaxClass.zero, TaxClass.exempt):
        raise InvalidInput(f"{tax_class.value} goods are never taxed; set standard or reduced",
                           field="tax_class")
    try:
        rate_bp = int(Decimal(rate_percent) * 100)
    except InvalidOperation:
        raise InvalidInput("a rate is a percentage, e.g. 20 or 5.5", field="rate") from None
    if not 0 <= rate_bp <= 10_000 or Decimal(rate_percent) * 100 != rate_bp:
        raise InvalidInput("a rate is between 0 and 100 %, to two decimals", field="rate")
    row = session.scalar(select(TaxRate).where(TaxRate.country == country,
                                               TaxRate.tax_class == tax_class,
                                               TaxRate.valid_from == valid_from))
    if row is None:
        row = TaxRate(country=country, tax_class=tax_class, valid_from=valid_from,
                      rate_bp=rate_bp, created_at=clock.now())
        session.add(row)
    row.rate_bp = rate_bp
    session.flush()
    return row


def tax_classes_of(session: Session, product_ids: Sequence[int]) -> dict[int, TaxClass]:
    """Each product's tax class; standard unless one was set."""
    found = dict(session.execute(select(ProductTaxClass.product_id, ProductTaxClass.tax_class)
                                 .where(ProductTaxClass.product_id.in_(list(product_ids))))
                 .all())
    return {pid: found.get(pid, TaxClass.standard) for pid in product_ids}


def set_tax_class(session: Session, *, product_id: int, tax_class: TaxClass) -> None:
    row = session.get(ProductTaxClass, product_id)
    if row is None:
        session.add(ProductTaxClass(product_id=product_id, tax_class=tax_class))
    else:
        row.tax_class = tax_class
    session.flush()


def check_vat_number(number: str) -> VatNumber:
    """Checks a UK or EU VAT number's format and check digits (python-stdnum; no network
    lookup in VIES); raises InvalidInput naming the field."""
    compact = "".join(number.split()).upper().replace("-", "").replace(".", "")
    try:
        if compact.startswith("GB"):
            value, country = "GB" + gb_vat.validate(compact), "GB"
        else:
            value = eu_vat.validate(compact)
            country = value[:2].replace("EL", "GR")
    except ValidationError:
        raise InvalidInput(f"{number!r} is not a valid UK or EU VAT number",
                           field="vat_number") from None
    checked = VatNumber(value)
    checked.country = country
    return checked


class OfflineVatChecker:
    """The built-in ``VatNumberChecker``: format and check digits only, no network."""

    def check(self, number: str) -> VatNumber:
        return check_vat_number(number)


OFFLINE = OfflineVatChecker()


def tax_for(session: Session, *, lines: Sequence[tuple[int, int]], shipping_amount: int,
            country: str, at: datetime, prices_include_tax: bool, shop_country: str,
            vat_number: str = "", vat_checker: VatNumberChecker = OFFLINE) -> TaxBreakdown:
    """The VAT of a priced cart: ``lines`` are (product id, amount after discounts) in order.
    A VAT number must be valid (``vat_checker``: offline unless the root wires VIES); with one
    from another country than the shop's, the sale is reverse-charged."""
    rows = rate_rows(session)
    reverse = False
    if vat_number.strip():
        checked = vat_checker.check(vat_number)
        reverse = is_reverse_charge(shop_country=shop_country, buyer_country=checked.country,
                                    vat_number_valid=True,
                                    countries_with_rates={r.country for r in rows})
    classes = tax_classes_of(session, [product_id for product_id, _ in lines])
    return breakdown(rows, lines=[TaxLine(amount, classes[pid]) for pid, amount in lines],
                     shipping_amount=shipping_amount, country=country.upper(), on=at.date(),
                     prices_include_tax=prices_include_tax, reverse_charge=reverse)


def tax_table(session: Session, *, product_ids: Sequence[int],
              prices_include_tax: bool) -> TaxTable:
    """The rates and these products' tax classes, read once for many orders of them (a drop
    batch, the counter)."""
    return TaxTable(rate_rows(session), tax_classes_of(session, sorted(set(product_ids))),
                    prices_include_tax=prices_include_tax)
