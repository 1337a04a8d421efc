"""The pure VAT rules: rates by date, the tax in or on a price, reverse charge, refunds."""

from __future__ import annotations

from datetime import date

from dropline.tax.rules import (
    RateRow,
    TaxClass,
    TaxLine,
    TaxTable,
    breakdown,
    is_reverse_charge,
    rate_for,
    refund_tax,
    tax_in,
)
from dropline.tax.service import shipped_rates

S, R = TaxClass.standard, TaxClass.reduced
ROWS = [RateRow("GB", S, 2000, date(2000, 1, 1)), RateRow("GB", R, 500, date(2000, 1, 1)),
        RateRow("EE", S, 2200, date(2024, 1, 1)), RateRow("EE", S, 2400, date(2025, 7, 1))]


def test_the_rate_is_the_latest_in_force_on_the_day():
    assert rate_for(ROWS, country="EE", tax_class=S, on=date(2025, 6, 30)) == 2200
    assert rate_for(ROWS, country="EE", tax_class=S, on=date(2025, 7, 1)) == 2400
    assert rate_for(ROWS, country="GB", tax_class=TaxClass.exempt, on=date(2026, 1, 1)) == 0
    assert rate_for(ROWS, country="US", tax_class=S, on=date(2026, 1, 1)) is None


def test_tax_is_the_part_of_an_inclusive_price_or_added_to_an_exclusive_one():
    assert tax_in(1200, 2000, prices_include_tax=True) == 200
    assert tax_in(1000, 2000, prices_include_tax=False) == 200
    assert tax_in(999, 550, prices_include_tax=True) == 52  # 999 x 5.5 / 105.5 = 52.08


def test_the_breakdown_taxes_each_line_at_its_class_and_delivery_at_the_standard_rate():
    vat = breakdown(ROWS, lines=[TaxLine(1200, S), TaxLine(1050, R), TaxLine(500,
                                                                             TaxClass.zero)],
                    shipping_amount=360, country="GB", on=date(2026, 3, 2),
                    prices_include_tax=True)
    assert [line.tax_amount for line in vat.lines] == [200, 50, 0]
    assert (vat.shipping.tax_amount, vat.tax_amount, vat.added_amount) == (60, 310, 0)
    assert vat.by_rate() == [(2000, 260), (500, 50), (0, 0)]


def test_an_export_outside_the_rate_table_is_zero_rated():
    vat = breakdown(ROWS, lines=[TaxLine(1200, S)], shipping_amount=0, country="US",
                    on=date(2026, 3, 2), prices_include_tax=False)
    assert vat.tax_amount == 0


def test_reverse_charge_is_for_a_valid_vat_number_of_another_country_with_rates():
    known = {"GB", "DE", "FR"}
    assert is_reverse_charge(shop_country="DE", buyer_country="FR", vat_number_valid=True,
                             countries_with_rates=known)
    assert not is_reverse_charge(shop_country="DE", buyer_country="DE",
                                 vat_number_valid=True, countries_with_rates=known)
    assert not is_reverse_charge(shop_country="DE", buyer_country="FR",
                                 vat_number_valid=False, countries_with_rates=known)


def test_a_refund_reverses_tax_in_proportion():
    assert refund_tax(600, total_amount=1200, tax_amount=200) == 100
    assert refund_tax(1200, total_amount=1200, tax_amount=200) == 200


def test_the_shipped_table_has_the_uk_and_the_27_eu_states():
    countries = {row.country for row in shipped_rates()}
    assert len(countries) == 28 and {"GB", "DE", "FR", "IE", "MT"} <= countries
    assert rate_for(shipped_rates(), country="FI", tax_class=S, on=date(2026, 1, 1)) == 2550


def test_a_tax_table_gives_the_breakdown_of_the_rules_for_every_order_of_a_batch():
    table = TaxTable(ROWS, {1: S, 2: R}, prices_include_tax=True)  # products 1 and 2
    orders = [([(1, 4200), (2, 1050)], 0, "GB"), ([(1, 4200)], 395, "GB"),
              ([(2, 2100)], 395, "EE"), ([(3, 999)], 0, "GB")]  # 3: not read in, standard
    classes = {1: S, 2: R, 3: S}

    for lines, shipping, country in orders * 2:  # each order twice: the second from memory
        assert table.breakdown(lines=lines, shipping_amount=shipping, country=country,
                               on=date(2026, 3, 2)) == breakdown(
            ROWS, lines=[TaxLine(amount, classes[pid]) for pid, amount in lines],
            shipping_amount=shipping, country=country, on=date(2026, 3, 2),
            prices_include_tax=True)
    # the EE reduced line: Estonia has no reduced rate in ROWS, so it is untaxed there
    assert table.breakdown(lines=[(2, 2100)], shipping_amount=0, country="EE",
                           on=date(2026, 3, 2)).tax_amount == 0
