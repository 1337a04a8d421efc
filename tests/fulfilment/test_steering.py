"""Slot steering and consolidation: prices from the marginal cost to the routes forming (pure
functions), and the same through ``gather_options`` and the decision record on a database."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sqlalchemy import select

from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment import steering as S
from dropline.fulfilment.models import FulfilmentDecisionRow

from .builders import CENTRAL, DALSTON, HACKNEY, RATES, make_item, make_network, make_orders, \
    make_windows

COSTS = R.VehicleCosts(cost_per_km_amount=25, cost_per_hour_amount=1600)
AREA = math.pi * 3500 ** 2
LINE = service.LineRequest


def quotes_for(destination: R.GeoPoint, booked: dict[int, list[R.GeoPoint]],
               remaining: int = 10) -> list[S.WindowQuote]:
    return [S.WindowQuote(window_id, "hub-hackney",
                          R.insertion_quote(HACKNEY, points, destination, COSTS), None,
                          remaining)
            for window_id, points in booked.items()]


def test_a_window_a_route_passes_is_cheaper_than_one_that_needs_a_new_route():
    near = R.GeoPoint(DALSTON.latitude + 0.0005, DALSTON.longitude)
    trip = R.trip_quote(HACKNEY, near, COSTS)
    offers = S.offer_windows(quotes_for(near, {1: [DALSTON], 2: []}), trip=trip,
                             base_price=395, green_price=195)

    passing, empty = offers
    assert passing.marginal_amount < empty.marginal_amount == trip.amount
    assert (passing.green, passing.price_amount) == (True, 195)
    assert "a van already passes" in passing.reason
    # A trip of its own while a passing van costs a fifth of it: not offered at all.
    assert empty.hidden and "route of its own" in empty.reason


def test_the_price_follows_the_extra_cost_and_a_route_breaker_is_hidden():
    far = R.GeoPoint(HACKNEY.latitude + 0.025, HACKNEY.longitude)  # 2.8 km north
    trip = R.trip_quote(HACKNEY, far, COSTS)
    booked = {1: [R.GeoPoint(far.latitude + 0.001, far.longitude)] * 3,  # passes by
              2: [R.GeoPoint(far.latitude - 0.01, far.longitude + 0.004)] * 2,  # 1.1 km off
              3: []}  # a route of its own
    offers = {o.window_id: o for o in S.offer_windows(
        quotes_for(far, booked), trip=trip, base_price=395, green_price=195)}

    assert offers[1].green and offers[1].price_amount == 195
    assert offers[3].hidden and "route of its own" in offers[3].reason
    assert offers[1].marginal_amount < offers[2].marginal_amount
    # The far side's window is offered, priced up by half its extra cost.
    extra = offers[2].marginal_amount - offers[1].marginal_amount
    assert not offers[2].hidden and "priced up" in offers[2].reason
    assert offers[2].price_amount == S.round_price(395 + extra / 2)


def test_a_full_window_is_hidden_and_members_get_their_subsidy_off():
    trip = R.trip_quote(HACKNEY, DALSTON, COSTS)
    quotes = [S.WindowQuote(1, "h", R.insertion_quote(HACKNEY, [], DALSTON, COSTS), None, 0),
              S.WindowQuote(2, "h", R.insertion_quote(HACKNEY, [], DALSTON, COSTS), None, 3)]
    full, open_ = S.offer_windows(quotes, trip=trip, base_price=395, green_price=195,
                                  member_subsidy=200)

    assert full.hidden and "used up" in full.reason
    assert (open_.hidden, open_.price_amount) == (False, 195)
    assert "member subsidy" in open_.reason


def test_a_household_already_in_the_window_adds_no_driving():
    quote = S.WindowQuote(1, "h", R.insertion_quote(HACKNEY, [DALSTON], DALSTON, COSTS), None,
                          5, same_address=True)
    (offer,) = S.offer_windows([quote], trip=R.trip_quote(HACKNEY, DALSTON, COSTS),
                               base_price=395, green_price=195)
    assert (offer.marginal_amount, offer.green) == (0, True)
    assert "one stop" in offer.reason


def test_the_forecast_density_lowers_the_estimate_of_an_empty_window():
    trip = R.trip_quote(HACKNEY, DALSTON, COSTS)
    sparse = S.density_quote(HACKNEY, DALSTON, COSTS, expected_stops=5, area_m2=AREA,
                             stops_per_route=15)
    dense = S.density_quote(HACKNEY, DALSTON, COSTS, expected_stops=40, area_m2=AREA,
                            stops_per_route=15)
    assert dense.amount < sparse.amount < trip.amount
    # The time at the door is never discounted away.
    assert dense.amount > COSTS.amount_for(0, COSTS.service_seconds)
    quote = S.WindowQuote(1, "h", R.insertion_quote(HACKNEY, [], DALSTON, COSTS), dense, 40)
    assert quote.marginal_amount == dense.amount


def test_window_capacity_comes_from_the_vans_and_the_time():
    one = S.window_capacity(vehicles=1, window_seconds=7200, costs=COSTS, area_m2=AREA,
                            expected_stops=30)
    three = S.window_capacity(vehicles=3, window_seconds=7200, costs=COSTS, area_m2=AREA,
                              expected_stops=30)
    short = S.window_capacity(vehicles=3, window_seconds=3600, costs=COSTS, area_m2=AREA,
                              expected_stops=30)
    assert three == 3 * one and short < three
    # A stop every (180 s at the door + the hop) seconds: fewer than 40 in two hours.
    assert 15 < one < 40
    assert S.window_capacity(vehicles=0, window_seconds=7200, costs=COSTS, area_m2=AREA,
                             expected_stops=30) == 0


def test_joining_an_undispatched_parcel_costs_far_less_than_a_second_parcel():
    site = R.CentralSite(1, "central", CENTRAL, 150, RATES)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    alone = R.central_quote(site, destination=DALSTON, weight_grams=700, at=at)
    joined = R.joined_central_quote(site, destination=DALSTON, parcel_grams=700,
                                    weight_grams=700, at=at)
    assert joined is not None and alone is not None
    # 1.4 kg moves the parcel from the 1 kg step (460) to the 2 kg step (540).
    assert (joined.carrier_amount, joined.cost_amount) == (80, 230)
    assert alone.cost_amount == 610


# --- through the service --------------------------------------------------------------------


def test_steered_options_price_the_passing_window_green_and_the_record_lists_the_offers(
        db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    *_, first, busy = make_windows(db)
    order, second = make_orders(db, clock, 2)
    near = R.GeoPoint(DALSTON.latitude + 0.0005, DALSTON.longitude)
    with db.transaction() as session:
        service.book_window(session, clock=clock, window_id=busy, order_id=order,
                            destination=DALSTON, weight_grams=340)
        found = service.gather_options(
            session, lines=[LINE(variant, 1)], destination=service.Destination(near),
            at=clock.now(), steering=service.Steering())
        windows = {o.window_id: o for o in found.options if o.path == "hub-window"}
        decision = R.decide(found.facts, found.options, [])
        service.record_decision(session, clock=clock, decision=decision, order_id=second,
                                customer_id=None)

    assert windows[busy].green and windows[busy].price_amount == 195
    assert windows[busy].cost_amount < windows[first].cost_amount
    assert decision.chosen.window_id == busy
    with db.transaction() as session:
        explanation = session.scalar(select(FulfilmentDecisionRow.explanation))
    assert "Offered:" in explanation and "a van already passes" in explanation


def test_collection_and_a_same_address_window_are_offered_when_steered(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    *_, busy = make_windows(db)
    (order,) = make_orders(db, clock, 1)
    with db.transaction() as session:
        service.book_window(session, clock=clock, window_id=busy, order_id=order,
                            destination=DALSTON, weight_grams=340)
        found = service.gather_options(
            session, lines=[LINE(variant, 1)], destination=service.Destination(DALSTON),
            at=clock.now(), steering=service.Steering(collection=True))
    same = next(o for o in found.options if o.window_id == busy)
    collect = [o for o in found.options if o.path == "hub-collect"]
    assert same.cost_amount == 80 and "one stop" in same.offer  # handling only: no driving
    assert [(o.eligible, o.cost_amount) for o in collect] == [(True, 80)]


def test_a_households_orders_in_one_window_are_one_stop_on_the_route_sheet(db, clock):
    from dropline.adapters.routing import PyVRPSolver
    from dropline.fulfilment.planning import plan_window, route_sheet

    make_network(db, clock)
    window_id = make_windows(db)[-1]
    first, second, other = make_orders(db, clock, 3)
    with db.transaction() as session:
        for order, point in ((first, DALSTON), (second, DALSTON), (other, HACKNEY_NORTH)):
            service.book_window(session, clock=clock, window_id=window_id, order_id=order,
                                destination=point, weight_grams=340)
    clock.advance(hours=12)
    with db.transaction() as session:
        planned = plan_window(session, clock=clock, window_id=window_id,
                              solver=PyVRPSolver(max_iterations=200), max_seconds=1)
        sheet = route_sheet(session, window_id=window_id)
    assert len(planned.problem.stops) == 2 and planned.plan.feasible
    merged = next(s for s in planned.problem.stops if s.demand == 680)
    assert merged.service == 180 + S.EXTRA_PARCEL_SECONDS
    positions = {s.order_id: (s.position, s.eta) for r in sheet.routes for s in r.stops}
    assert positions[first] == positions[second] != positions[other]


HACKNEY_NORTH = R.GeoPoint(HACKNEY.latitude + 0.01, HACKNEY.longitude)


def test_with_steering_on_the_api_offers_the_passing_window_green_and_geocodes_the_brands_file(
        db, clock, settings, tmp_path):
    """``fulfilment.steering`` and ``fulfilment.postcode_file`` wired by the composition root:
    the delivery options price a window from its marginal cost, with the reason, and a
    Manchester postcode from the brand's file is placed (central: no hub reaches it)."""
    from pathlib import Path

    from fastapi.testclient import TestClient

    from dropline.web.app import create_app

    make_network(db, clock)
    variant = make_item(db, clock)
    *_, first, busy = make_windows(db)
    (order,) = make_orders(db, clock, 1)
    with db.transaction() as session:
        service.book_window(session, clock=clock, window_id=busy, order_id=order,
                            destination=DALSTON, weight_grams=340)
    sample = Path(__file__).resolve().parent.parent / "data" / "postcodes_geonames_sample.txt"
    steered = settings.model_copy(update={"fulfilment": settings.fulfilment.model_copy(
        update={"steering": True, "postcode_file": str(sample)})})
    with TestClient(create_app(steered, clock=clock, db=db, run_worker=False)) as client:
        near = client.get("/api/v1/delivery-options", params={
            "line": f"{variant}x1", "latitude": DALSTON.latitude + 0.0005,
            "longitude": DALSTON.longitude})
        manchester = client.get("/api/v1/delivery-options",
                                params={"line": f"{variant}x1", "postcode": "M1 1AE"})

    assert near.status_code == 200, near.text
    windows = {w["window_id"]: w for w in near.json()["windows"]}
    assert windows[busy]["green"] and windows[busy]["price_amount"] == 195
    assert windows[busy]["label"].startswith("green: a van already passes")
    assert first not in windows or windows[first]["price_amount"] > 195
    assert manchester.status_code == 200, manchester.text
    body = manchester.json()
    assert (body["address"]["latitude"], body["decision"]["path"]) == (53.4794, "central")
    assert body["central"]["zone"] == "national"
