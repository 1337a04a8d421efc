"""The pure discount rules: live window, scope, what each kind takes off, and stacking with
member prices. No database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dropline.discounts.errors import (
    DiscountDisabled,
    DiscountExpired,
    DiscountNotApplicable,
    DiscountNotBetter,
    DiscountNotStarted,
)
from dropline.discounts.rules import (
    CodeTerms,
    DiscountKind,
    LineFacts,
    Stacking,
    apply_code,
    check_live,
)
from dropline.orders.rules import LineCancel, partial_cancel_amount
from dropline.pricing import proportional_share

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def line(variant_id=1, *, product_id=10, family="eau-de-parfum", drops=frozenset(),
         quantity=1, listed=4000, member=None) -> LineFacts:
    return LineFacts(variant_id, product_id, family, frozenset(drops), quantity, listed,
                     listed if member is None else member)


def terms(**changes) -> CodeTerms:
    return CodeTerms(**{"code": "SPRING10", "kind": DiscountKind.percentage, "percent": 10,
                        **changes})


def test_a_percentage_code_takes_its_percent_off_each_covered_line_rounded_down():
    applied = apply_code(terms(percent=15), [line(quantity=3, listed=999)], currency="GBP",
                         tier_slug=None)
    assert applied.line_discounts == (449,)  # 15% of 2997 = 449.55


def test_a_fixed_code_is_shared_by_value_and_never_exceeds_what_it_covers():
    lines = [line(1, listed=1000), line(2, listed=3000)]
    assert apply_code(terms(kind=DiscountKind.fixed, amount=1001), lines, currency="GBP",
                      tier_slug=None).line_discounts == (250, 751)
    assert apply_code(terms(kind=DiscountKind.fixed, amount=99_999), lines, currency="GBP",
                      tier_slug=None).discount_amount == 4000


def test_a_fixed_code_in_another_currency_is_refused():
    with pytest.raises(DiscountNotApplicable):
        apply_code(terms(kind=DiscountKind.fixed, amount=500, currency="EUR"), [line()],
                   currency="GBP", tier_slug=None)


def test_free_delivery_touches_no_price():
    applied = apply_code(terms(kind=DiscountKind.free_delivery), [line(member=3000)],
                         currency="GBP", tier_slug=None)
    assert (applied.free_delivery, applied.unit_amounts, applied.discount_amount) == (
        True, (3000,), 0)


@pytest.mark.parametrize(("scope", "covered"), [
    ({"product_ids": frozenset({10})}, (True, False)),
    ({"family_slugs": frozenset({"candles"})}, (False, True)),
    ({"drop_ids": frozenset({7})}, (True, False)),
    ({"product_ids": frozenset({10}), "family_slugs": frozenset({"candles"})}, None),
])
def test_a_line_is_covered_when_it_matches_every_list_the_code_names(scope, covered):
    lines = [line(1, product_id=10, drops={7}), line(2, product_id=11, family="candles")]
    if covered is None:
        with pytest.raises(DiscountNotApplicable) as refused:
            apply_code(terms(**scope), lines, currency="GBP", tier_slug=None)
        assert refused.value.extensions["reason"] == "scope"
        return
    applied = apply_code(terms(**scope), lines, currency="GBP", tier_slug=None)
    assert tuple(d > 0 for d in applied.line_discounts) == covered


def test_a_tier_code_is_for_members_of_that_tier_only():
    code = terms(tier_slugs=frozenset({"inner-circle"}))
    assert apply_code(code, [line()], currency="GBP", tier_slug="inner-circle").discount_amount
    for tier in (None, "friends"):
        with pytest.raises(DiscountNotApplicable):
            apply_code(code, [line()], currency="GBP", tier_slug=tier)


def test_a_stacking_code_comes_off_the_member_price():
    applied = apply_code(terms(percent=10), [line(listed=4000, member=3000)],
                         currency="GBP", tier_slug="friends")
    assert (applied.unit_amounts, applied.line_discounts) == ((3000,), (300,))


def test_a_code_instead_of_member_prices_prices_covered_lines_at_the_list_price():
    code = terms(percent=30, stacking=Stacking.instead_of_member_price,
                 family_slugs=frozenset({"eau-de-parfum"}))
    lines = [line(1, listed=4000, member=3600), line(2, family="candles", listed=2000,
                                                     member=1800)]
    applied = apply_code(code, lines, currency="GBP", tier_slug="friends")
    # The covered line at 4000 less 30% (1200 > the member saving of 400); the candle keeps
    # its member price.
    assert (applied.unit_amounts, applied.line_discounts) == ((4000, 1800), (1200, 0))


def test_a_code_instead_of_member_prices_worth_less_than_them_is_refused():
    code = terms(percent=5, stacking=Stacking.instead_of_member_price)
    with pytest.raises(DiscountNotBetter):
        apply_code(code, [line(listed=4000, member=3600)], currency="GBP", tier_slug="friends")


@pytest.mark.parametrize(("changes", "refusal"), [
    ({"disabled": True}, DiscountDisabled),
    ({"starts_at": datetime(2026, 3, 2, 11, tzinfo=UTC)}, DiscountNotStarted),
    ({"ends_at": NOW}, DiscountExpired),
])
def test_a_code_outside_its_window_or_withdrawn_is_refused_with_its_reason(changes, refusal):
    with pytest.raises(refusal) as refused:
        check_live(terms(**changes), NOW)
    assert refused.value.extensions["field"] == "discount_code"


def test_proportional_shares_add_up_exactly():
    assert proportional_share(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(proportional_share(997, [13, 29, 101, 7])) == 997


def test_cancelling_units_of_a_discounted_line_refunds_them_less_their_share_of_the_code():
    # 3 units at 1000 with 301 off the line: the shares of the units add up to 301.
    first = partial_cancel_amount([LineCancel(1, 1000, 3, 0, 1, 301)], refundable=10_000)
    rest = partial_cancel_amount([LineCancel(1, 1000, 3, 1, 2, 301)], refundable=10_000)
    assert (first, rest) == (1000 - 100, 2000 - 201)
