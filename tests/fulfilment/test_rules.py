"""The pure fulfilment rules: cost model, decision, window slotting, the brand's rules and the
decision tree. No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dropline.fulfilment import rules as R
from dropline.fulfilment.decision_tree import tree_markdown, tree_svg

from .builders import CENTRAL, DALSTON, HACKNEY, MANCHESTER, NEAR_HACKNEY, RATES

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday; London is on GMT
BIKE = R.VehicleCosts(cost_per_km_amount=20, cost_per_hour_amount=1600, speed_kmh=18.0,
                      detour_factor=1.3, service_seconds=180)
SITE = R.CentralSite(1, "central", CENTRAL, pick_pack_amount=150, rates=RATES)


def central(cost: int = 610, *, promise: datetime = NOW + timedelta(days=1),
            excluded: str = "") -> R.Option:
    return R.Option("central", 1, "central", cost, promise,
                    breakdown=(("pick/pack", 150), ("carrier london", cost - 150)),
                    excluded=excluded)


def window(cost: int, *, window_id: int = 7, ends: datetime = NOW + timedelta(hours=6),
           excluded: str = "") -> R.Option:
    return R.Option("hub-window", 2, "hub-hackney", cost, ends,
                    breakdown=(("handling", 80), ("route insertion", cost - 80)),
                    window_id=window_id, window_starts_at=ends - timedelta(hours=2),
                    excluded=excluded)


FACTS = R.OrderFacts(weight_grams=340, subtotal_amount=9500, distance_to_hub_km=0.4)


# --- cost model -----------------------------------------------------------------------------


def test_central_cost_is_pick_pack_plus_the_rate_for_zone_and_weight():
    quote = R.central_quote(SITE, destination=DALSTON, weight_grams=1500, at=NOW)

    assert (quote.zone, quote.carrier_amount, quote.cost_amount) == ("london", 540, 690)
    # Dispatched today (before the 14:00 cutoff), one day in transit, by 20:00.
    assert quote.promise_at == datetime(2026, 3, 3, 20, 0, tzinfo=UTC)


def test_central_promise_slips_a_day_after_the_dispatch_cutoff_and_far_zones_take_longer():
    late = R.central_quote(SITE, destination=MANCHESTER, weight_grams=300,
                           at=NOW.replace(hour=15))

    assert (late.zone, late.cost_amount) == ("national", 150 + 690)
    assert late.promise_at == datetime(2026, 3, 5, 20, 0, tzinfo=UTC)


def test_no_rate_for_an_overweight_parcel_means_no_central_quote():
    assert R.central_quote(SITE, destination=DALSTON, weight_grams=6000, at=NOW) is None


def test_an_empty_window_costs_a_trip_of_its_own():
    quote = R.insertion_quote(HACKNEY, [], NEAR_HACKNEY, BIKE)

    metres = 2 * HACKNEY.metres_to(NEAR_HACKNEY) * 1.3
    assert quote.extra_metres == pytest.approx(metres)
    assert quote.extra_seconds == pytest.approx(metres / 5 + 180)
    assert quote.amount == R.round_amount(metres / 1000 * 20 + (metres / 5 + 180) / 3600 * 1600)
    assert quote.booked_stops == 0 and quote.nearest_booked_metres is None


def test_a_stop_next_to_one_already_booked_costs_little_more_than_the_time_at_the_door():
    next_door = R.GeoPoint(DALSTON.latitude + 0.0005, DALSTON.longitude)  # ~56 m north
    alone = R.insertion_quote(HACKNEY, [], next_door, BIKE)
    beside = R.insertion_quote(HACKNEY, [DALSTON], next_door, BIKE)

    assert beside.amount < alone.amount / 3
    assert beside.extra_metres <= 2 * 1.3 * DALSTON.metres_to(next_door) + 1e-6
    assert beside.amount >= R.round_amount(180 / 3600 * 1600)  # the door time is never free


def test_green_price_only_where_a_van_already_goes_nearby():
    next_door = R.GeoPoint(DALSTON.latitude + 0.0005, DALSTON.longitude)
    trip = R.trip_quote(HACKNEY, next_door, BIKE)
    beside = R.insertion_quote(HACKNEY, [DALSTON], next_door, BIKE)

    assert R.window_price(beside, trip=trip, base_price_amount=395,
                          green_price_amount=195) == (195, True)
    assert R.window_price(trip, trip=trip, base_price_amount=395,
                          green_price_amount=195) == (395, False)


# --- the decision on constructed cases ------------------------------------------------------


def test_stock_only_at_the_warehouse_ships_central():
    decision = R.decide(FACTS, [central(), window(265, excluded="not in stock at this hub")],
                        [])

    assert decision.path == "central" and decision.rule == R.DEFAULT_RULE
    assert decision.hub is None
    assert "hub: no window can take it" in decision.explanation


def test_a_cheaper_hub_window_wins_and_the_explanation_gives_both_costs():
    decision = R.decide(FACTS, [central(610), window(265)], [])

    assert (decision.path, decision.chosen.window_id) == ("hub-window", 7)
    assert (decision.central.cost_amount, decision.hub.cost_amount) == (610, 265)
    assert "£2.65" in decision.explanation and "£6.10" in decision.explanation
    assert decision.explanation.endswith("Decided by: lowest cost.")


def test_a_hub_window_that_misses_the_promise_loses_to_central_that_keeps_it():
    facts = R.OrderFacts(weight_grams=340, required_by=NOW + timedelta(hours=30))
    late_window = window(265, ends=NOW + timedelta(hours=40))

    decision = R.decide(facts, [central(610, promise=NOW + timedelta(hours=28)), late_window],
                        [])

    assert decision.path == "central" and decision.promise_met
    hub = next(o for o in decision.options if o.path == "hub-window")
    assert hub.excluded.startswith("misses the promise")


def test_when_nothing_keeps_the_promise_the_cheapest_with_stock_goes_and_says_so():
    facts = R.OrderFacts(weight_grams=340, required_by=NOW + timedelta(hours=1))

    decision = R.decide(facts, [central(610), window(265)], [])

    assert decision.path == "hub-window" and not decision.promise_met
    assert decision.rule.startswith("no option meets the promise")


def test_no_stock_anywhere_is_no_decision():
    assert R.decide(FACTS, [central(excluded="not in stock at the warehouse"),
                            window(265, excluded="not in stock at this hub")], []) is None


def test_a_rule_gives_subsidised_members_a_window_even_when_central_is_cheaper():
    rule = R.parse_rule({"name": "members with delivery subsidy always get a window",
                         "conditions": [{"field": "member_delivery_subsidy", "op": "eq",
                                         "value": True}],
                         "action": "prefer-hub"})
    member = R.OrderFacts(weight_grams=340, member_delivery_subsidy=True)

    assert R.decide(FACTS, [central(610), window(900)], [rule]).path == "central"
    decision = R.decide(member, [central(610), window(900)], [rule])
    assert decision.path == "hub-window"
    assert decision.rule == "members with delivery subsidy always get a window"


def test_a_preferred_hub_capped_by_a_premium_falls_back_to_the_cheapest():
    rule = R.Rule("orders under 2 km prefer the hub",
                  (R.Condition("distance_to_hub_km", "lt", 2),), "prefer-hub",
                  max_premium_amount=100)

    within = R.decide(FACTS, [central(610), window(700)], [rule])
    beyond = R.decide(FACTS, [central(610), window(800)], [rule])

    assert within.path == "hub-window" and within.rule == rule.name
    assert beyond.path == "central" and beyond.rule == R.DEFAULT_RULE
    assert "costs £1.90 more than central (cap £1.00)" in beyond.explanation


def test_rules_are_tried_in_order_and_a_disabled_rule_is_skipped():
    central_first = R.Rule("heavy goes central", (R.Condition("weight_grams", "gt", 100),),
                           "prefer-central")
    hub_always = R.Rule("always the hub", (), "prefer-hub")

    assert R.decide(FACTS, [central(610), window(900)],
                    [central_first, hub_always]).rule == "heavy goes central"
    assert R.decide(FACTS, [central(610), window(900)],
                    [R.Rule(**{**central_first.__dict__, "enabled": False}),
                     hub_always]).rule == "always the hub"


def test_an_unknown_fact_never_matches_a_condition():
    rule = R.Rule("near", (R.Condition("distance_to_hub_km", "lt", 2),), "prefer-hub")
    unknown = R.OrderFacts(weight_grams=340, distance_to_hub_km=None)

    assert not rule.matches(unknown)


@pytest.mark.parametrize("data, message", [
    ({"name": "", "action": "prefer-hub"}, "needs a name"),
    ({"name": "x", "action": "teleport"}, "action must be one of"),
    ({"name": "x", "action": "prefer-hub",
      "conditions": [{"field": "shoe_size", "op": "eq", "value": 9}]}, "unknown field"),
    ({"name": "x", "action": "prefer-hub",
      "conditions": [{"field": "weight_grams", "op": "~", "value": 9}]}, "unknown op"),
    ({"name": "x", "action": "prefer-hub",
      "conditions": [{"field": "weight_grams", "op": "lt", "value": "heavy"}]},
     "compares with a int"),
    ({"name": "x", "action": "prefer-hub",
      "conditions": [{"field": "is_member", "op": "lt", "value": True}]}, "takes eq or ne"),
    ({"name": "x", "action": "prefer-hub", "max_premium_amount": -1}, "an integer from 0 to"),
])
def test_a_malformed_rule_is_refused_with_the_reason(data, message):
    with pytest.raises(ValueError, match=message):
        R.parse_rule(data)


def test_rules_round_trip_through_their_stored_form():
    rule = R.parse_rule({"name": "zones", "action": "prefer-central", "conditions": [
        {"field": "central_zone", "op": "in", "value": ["regional", "national"]}]})

    assert R.parse_rule(R.rule_to_data(rule)) == rule
    assert R.describe_rule(rule) == ("if carrier zone from the warehouse in regional, national: "
                                     "ship from the central warehouse")


# --- window slotting ------------------------------------------------------------------------


def test_opening_hours_are_cut_into_back_to_back_windows_with_a_cutoff():
    hours = R.OpeningHours.from_data({"mon": ["08:00", "15:00"]})

    slots = R.slot_windows(date(2026, 3, 2), hours, window_minutes=120, capacity=30,
                           cutoff_minutes=90)

    assert [(s.starts_at.hour, s.ends_at.hour) for s in slots] == [(8, 10), (10, 12), (12, 14)]
    assert slots[0].cutoff_at == datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    assert {s.capacity for s in slots} == {30}
    assert R.slot_windows(date(2026, 3, 3), hours, window_minutes=120, capacity=30,
                          cutoff_minutes=90) == []  # closed on Tuesdays


def test_windows_follow_local_time_across_the_clock_change():
    hours = R.OpeningHours.from_data({"mon": ["09:00", "11:00"]})

    (summer,) = R.slot_windows(date(2026, 3, 30), hours, window_minutes=120, capacity=1,
                               cutoff_minutes=0)

    assert summer.starts_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # 09:00 BST


def test_opening_hours_refuse_nonsense():
    with pytest.raises(ValueError, match="opens at"):
        R.OpeningHours.from_data({"mon": ["20:00", "08:00"]})
    with pytest.raises(ValueError, match="unknown day"):
        R.OpeningHours.from_data({"funday": ["08:00", "20:00"]})


# --- the decision tree ----------------------------------------------------------------------


RULES = [
    R.Rule("members with delivery subsidy always get a window",
           (R.Condition("member_delivery_subsidy", "eq", True),), "prefer-hub"),
    R.Rule("orders under 2 km prefer the hub", (R.Condition("distance_to_hub_km", "lt", 2),),
           "prefer-hub", max_premium_amount=150),
    R.Rule("switched off", (), "prefer-central", enabled=False),
]


def test_the_markdown_tree_lists_each_enabled_rule_between_the_filter_and_the_fallback():
    text = tree_markdown(RULES, title="Tree")

    assert text.splitlines()[0] == "# Tree"
    assert "2. **members with delivery subsidy always get a window: member with a delivery " \
           "subsidy?**" in text
    assert "3. **orders under 2 km prefer the hub: distance to the nearest hub (km) < 2?**" \
        in text
    assert "(at most £1.50 dearer than central)" in text
    assert "4. Choose the cheapest remaining option" in text
    assert "switched off" not in text


def test_the_svg_tree_is_self_contained_and_escapes_rule_names():
    rules = [R.Rule("<script>alert(1)</script> & co", (), "prefer-hub")]

    svg = tree_svg(rules)

    assert svg.startswith("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    assert svg.count("<rect") == 4  # the filter, the rule and its "yes" outcome, the fallback


def test_an_empty_rule_set_still_draws_the_filter_and_the_fallback():
    text = tree_markdown([])

    assert "1. List the options" in text and "2. Choose the cheapest" in text

