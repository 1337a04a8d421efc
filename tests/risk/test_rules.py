"""The pure rules, on constructed histories: every signal once where it should fire and once
where it should not; the refund arithmetic in integer minor units; eligibility."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dropline.errors import InvalidInput
from dropline.risk import rules as R

T = R.Thresholds()
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
NORM = R.BrandNorm(return_rate=0.1, average_return_value=4000)


def facts(**overrides: object) -> R.ReturnFacts:
    base = {"value": 4000, "family": "candles", "reason": "defective",
                "purchased_at": NOW - timedelta(days=20), "requested_at": NOW, "sold_grade": "new",
                "received_grade": "new", "serial_received": None, "serials_sold_on_line": (),
                "serial_known": False, "serial_sold_elsewhere": False}
    return R.ReturnFacts(**{**base, **overrides})  # type: ignore[arg-type]


# --- return rate vs history and brand norm ------------------------------------------------

def test_a_customer_returning_most_orders_is_flagged():
    signal = R.return_rate_signal(R.CustomerHistory(orders=5, returns=4), NORM, T)
    assert signal is not None and signal.points == 40
    assert "returned 4 of 5 orders (80%)" in signal.reason and "norm is 10%" in signal.reason


def test_an_occasional_returner_or_a_new_customer_is_not():
    assert R.return_rate_signal(R.CustomerHistory(orders=10, returns=2), NORM, T) is None
    assert R.return_rate_signal(R.CustomerHistory(orders=2, returns=2), NORM, T) is None


def test_the_bar_rises_with_the_brand_norm():
    high_norm = R.BrandNorm(return_rate=0.4)
    # 60% is above the absolute bar (50%) but under twice this brand's norm (80%).
    assert R.return_rate_signal(R.CustomerHistory(orders=5, returns=3), high_norm, T) is None


def test_a_return_far_above_the_customers_and_brands_usual_value_is_flagged():
    h = R.CustomerHistory(orders=4, order_value=16000)  # average 4000
    signal = R.return_value_signal(facts(value=15000), h, NORM, T)
    assert signal is not None and "15000" in signal.reason
    assert R.return_value_signal(facts(value=9000), h, NORM, T) is None


# --- wardrobing -----------------------------------------------------------------------------

def test_a_perfume_worn_and_returned_within_days_is_wardrobing():
    f = facts(family="eau-de-parfum", purchased_at=NOW - timedelta(days=3),
              received_grade="used", reason="changed-mind")
    signal = R.wardrobing_signal(f, T)
    assert signal is not None and "kept 3 day(s)" in signal.reason and "used" in signal.reason


def test_a_quick_return_of_a_faulty_unused_item_or_an_unwatched_family_is_not():
    quick_faulty = facts(family="eau-de-parfum", purchased_at=NOW - timedelta(days=2))
    assert R.wardrobing_signal(quick_faulty, T) is None
    candle = facts(family="candles", purchased_at=NOW - timedelta(days=2),
                   received_grade="used", reason="changed-mind")
    assert R.wardrobing_signal(candle, T) is None


def test_a_purchase_and_return_around_an_event_date_is_wardrobing():
    t = R.Thresholds(event_dates=(date(2026, 5, 30),))
    f = facts(family="candles", purchased_at=datetime(2026, 5, 28, tzinfo=UTC),
              requested_at=datetime(2026, 5, 31, tzinfo=UTC))
    assert "around the event of 2026-05-30" in R.wardrobing_signal(f, t).reason
    later = facts(family="candles", purchased_at=datetime(2026, 5, 10, tzinfo=UTC),
                  requested_at=datetime(2026, 5, 31, tzinfo=UTC))
    assert R.wardrobing_signal(later, t) is None


# --- serials --------------------------------------------------------------------------------

def test_a_serial_never_sold_is_a_mismatch():
    f = facts(serial_received="SN-X", serials_sold_on_line=("SN-1",), serial_known=False)
    signal = R.serial_mismatch_signal(f, T)
    assert signal.points >= T.review_score  # alone it sends the return to review
    assert signal.reason == "serial SN-X was never sold by this shop (this line sold: SN-1)"


def test_a_serial_sold_on_another_order_or_missing_is_a_mismatch():
    elsewhere = facts(serial_received="SN-2", serials_sold_on_line=("SN-1",),
                      serial_known=True, serial_sold_elsewhere=True)
    assert "sold on a different order" in R.serial_mismatch_signal(elsewhere, T).reason
    missing = facts(serial_received=None, serials_sold_on_line=("SN-1",))
    assert "none came back" in R.serial_mismatch_signal(missing, T).reason


def test_the_serial_that_was_sold_or_an_unserialised_item_is_fine():
    assert R.serial_mismatch_signal(facts(serial_received="SN-1",
                                          serials_sold_on_line=("SN-1",)), T) is None
    assert R.serial_mismatch_signal(facts(), T) is None


# --- velocity, linked accounts, drop queue, chargebacks ----------------------------------------

def test_refund_velocity():
    assert R.refund_velocity_signal(R.CustomerHistory(refunds_recent=3), T) is not None
    assert R.refund_velocity_signal(R.CustomerHistory(refunds_recent=2), T) is None


def test_linked_accounts_count_when_they_return_a_lot_or_dispute():
    busy = [R.LinkedAccount(7, "card", returns=2, chargebacks=0)]
    assert "card with customer 7" in R.linked_accounts_signal(busy, T).reason
    disputed = [R.LinkedAccount(8, "device", returns=0, chargebacks=1)]
    assert R.linked_accounts_signal(disputed, T) is not None


def test_a_household_sharing_an_address_with_a_clean_history_is_not_flagged():
    assert R.linked_accounts_signal([R.LinkedAccount(9, "address", 1, 0)], T) is None
    assert R.linked_accounts_signal([], T) is None


def test_bypassing_the_drop_queue_and_chargebacks():
    assert R.bypassed_queue_signal(R.CustomerHistory(bypassed_queue_orders=1), T) is not None
    assert R.bypassed_queue_signal(R.CustomerHistory(), T) is None
    assert R.chargebacks_signal(R.CustomerHistory(chargebacks=1), T).points == 40
    assert R.chargebacks_signal(R.CustomerHistory(), T) is None


def test_the_score_sums_fired_signals_caps_at_100_and_explains_itself():
    h = R.CustomerHistory(orders=5, returns=5, refunds_recent=5, chargebacks=2)
    f = facts(serial_received="SN-X", serials_sold_on_line=("SN-1",))
    score = R.score_return(f, h, NORM, [], T)
    assert score.score == 100 and score.needs_review
    assert {s.name for s in score.signals} == {"return_rate", "refund_velocity", "chargebacks",
                                               "serial_mismatch"}
    clean = R.score_return(facts(), R.CustomerHistory(orders=3), NORM, [], T)
    assert (clean.score, clean.needs_review, clean.reasons) == (0, False,
                                                                ["no risk signal fired"])


def test_weights_and_the_threshold_are_configurable():
    t = R.Thresholds(review_score=10, weights={**R.DEFAULT_WEIGHTS, "chargebacks": 5})
    score = R.score_customer(R.CustomerHistory(chargebacks=1), NORM, [], t)
    assert (score.score, score.needs_review) == (5, False)


# --- refund arithmetic (integer minor units) ------------------------------------------------

def test_a_full_refund_less_a_ten_percent_restocking_fee():
    quote = R.refund_quote(gross_amount=4999, fee_bps=1000, left_to_refund=10_000)
    # 10% of 4999 is 499.9: the fee rounds down, in the customer's favour.
    assert (quote.gross_amount, quote.fee_amount, quote.amount) == (4999, 499, 4500)


def test_a_partial_refund_is_what_was_asked_and_never_more_than_the_full_refund():
    assert R.refund_quote(gross_amount=6000, fee_bps=0, left_to_refund=6000,
                          requested_amount=2500).amount == 2500
    with pytest.raises(InvalidInput):
        R.refund_quote(gross_amount=6000, fee_bps=1000, left_to_refund=6000,
                       requested_amount=5401)
    with pytest.raises(InvalidInput):
        R.refund_quote(gross_amount=6000, fee_bps=0, left_to_refund=6000, requested_amount=-1)


def test_a_refund_is_never_above_what_is_left_nor_negative():
    assert R.refund_quote(gross_amount=6000, fee_bps=0, left_to_refund=1000).amount == 1000
    assert R.refund_quote(gross_amount=6000, fee_bps=0, left_to_refund=0).amount == 0
    everything = R.refund_quote(gross_amount=6000, fee_bps=10_000, left_to_refund=6000)
    assert (everything.fee_amount, everything.amount) == (6000, 0)
    with pytest.raises(InvalidInput):
        R.restocking_fee(100, fee_bps=10_001)


def test_the_order_discount_is_shared_pro_rata_and_rounds_against_over_refunding():
    # 3 x 3333 = 9999 of a 10000 subtotal with 1000 off: share 999.9 -> 1000.
    assert R.paid_for_units(unit_price_amount=3333, quantity=3, order_subtotal=10_000,
                            order_discount=1000) == 8999
    assert R.paid_for_units(unit_price_amount=2500, quantity=2, order_subtotal=5000,
                            order_discount=0) == 5000


def test_eligibility_window_and_final_sale():
    bought = NOW - timedelta(days=30)
    assert R.return_eligibility(purchased_at=bought, now=NOW, window_days=30,
                                final_sale=False).allowed
    late = R.return_eligibility(purchased_at=bought, now=NOW + timedelta(seconds=1),
                                window_days=30, final_sale=False)
    assert not late.allowed and "window closed on 2026-06-01" in late.reason
    assert not R.return_eligibility(purchased_at=NOW, now=NOW, window_days=30,
                                    final_sale=True).allowed


def test_receipts_carry_the_grade_and_disclosure_of_graded_items_only():
    from types import SimpleNamespace

    from dropline.risk.disclosure import receipt_disclosures

    new = SimpleNamespace(product_name="Fig", variant_name="50 ml", condition_grade="new",
                          condition_disclosure="")
    restored = SimpleNamespace(product_name="Diffuser", variant_name="Restored, grade B",
                               condition_grade="refurbished-b",
                               condition_disclosure="Light signs of use on the base.")
    assert receipt_disclosures([new]) == []
    lines = receipt_disclosures([new, restored], base_url="https://shop.example/")
    assert lines[2] == ("  Diffuser (Restored, grade B): Condition: Refurbished, grade B. "
                        "Light signs of use on the base.")
    assert lines[-1] == "What the grades mean: https://shop.example/returns-policy#grades"
