"""Fulfilment use cases on a real database: the decision from stored network, stock and
rules; window bookings; stock movements that restock hubs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dropline.errors import AlreadyExists, InvalidInput, OutOfStock
from dropline.events.models import DomainEvent
from dropline.fulfilment import service
from dropline.fulfilment.errors import WindowClosed, WindowFull
from dropline.fulfilment.models import (
    DeliveryWindow,
    FulfilmentDecisionRow,
    MovementKind,
    WindowBooking,
)
from dropline.locations.models import Location, LocationKind, StockLevel

from .builders import (
    DALSTON,
    HACKNEY,
    MANCHESTER,
    NEAR_HACKNEY,
    make_item,
    make_network,
    make_orders,
    make_windows,
)

LINE = service.LineRequest


def decide(db, clock, variant_id, destination, **kwargs):
    with db.transaction() as session:
        return service.decide_fulfilment(session, lines=[LINE(variant_id, 1)],
                                         destination=destination, customer_id=None,
                                         at=clock.now(), **kwargs)


def test_near_the_hub_with_stock_there_the_cheapest_open_window_is_chosen(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    windows = make_windows(db)  # 10:00 now: windows from 14:00 still take bookings

    decision = decide(db, clock, variant, NEAR_HACKNEY)

    assert decision.path == "hub-window"
    assert decision.chosen.window_id in windows
    assert decision.central.cost_amount == 150 + 460
    trip = service.R.trip_quote(HACKNEY, NEAR_HACKNEY, service.R.VehicleCosts(20, 1600))
    assert decision.chosen.cost_amount == 80 + trip.amount  # handling + a trip of its own
    assert decision.chosen.cost_amount < 300
    assert decision.rule == "lowest cost"


def test_stock_only_at_the_warehouse_ships_central_with_the_reason(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, hub=0)
    make_windows(db)

    decision = decide(db, clock, variant, NEAR_HACKNEY)

    assert decision.path == "central"
    hub = next(o for o in decision.options if o.path == "hub-window")
    assert hub.excluded == "not in stock at this hub"


def test_beyond_the_hub_radius_or_outside_london_ships_central(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    make_windows(db)

    far = decide(db, clock, variant, MANCHESTER)

    assert far.path == "central" and far.chosen.breakdown[1] == ("carrier national", 690)
    assert "beyond its 4.0 km radius" in next(
        o.excluded for o in far.options if o.path == "hub-window")


def test_a_promise_the_hub_windows_cannot_keep_goes_central(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    make_windows(db)  # today's windows end by 20:00

    decision = decide(db, clock, variant, NEAR_HACKNEY,
                      required_by=clock.now() + timedelta(hours=3))  # by 13:00: nothing can

    assert not decision.promise_met
    tomorrow = decide(db, clock, variant, DALSTON,
                      required_by=clock.now() + timedelta(hours=40))
    assert tomorrow.path == "hub-window"


def test_stored_rules_override_the_cost(db, clock):
    make_network(db, clock, hub_handling=900)  # a dear hub: central is cheaper
    variant = make_item(db, clock)
    make_windows(db)
    assert decide(db, clock, variant, NEAR_HACKNEY).path == "central"
    with db.transaction() as session:
        service.replace_rules(session, clock=clock, actor="test", rules=[{
            "name": "members with delivery subsidy always get a window", "action": "prefer-hub",
            "conditions": [{"field": "member_delivery_subsidy", "op": "eq", "value": True}]}])

    member = decide(db, clock, variant, NEAR_HACKNEY,
                    customer=service.CustomerFacts(is_member=True, member_delivery_subsidy=True))

    assert member.path == "hub-window"
    assert member.rule == "members with delivery subsidy always get a window"


def test_a_bad_rule_set_is_refused_and_changes_nothing(db, clock):
    with db.transaction() as session:
        service.replace_rules(session, clock=clock, actor="test",
                              rules=[{"name": "keep", "action": "prefer-hub"}])

    with pytest.raises(InvalidInput, match=r"unknown field"), db.transaction() as session:
        service.replace_rules(session, clock=clock, actor="test", rules=[
            {"name": "fine", "action": "prefer-hub"},
            {"name": "bad", "action": "prefer-hub",
             "conditions": [{"field": "nope", "op": "eq", "value": 1}]}])

    with db.transaction() as session:
        assert [r.name for r in service.load_rules(session)] == ["keep"]


def test_no_stock_anywhere_is_out_of_stock(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, central=0, hub=0)

    with pytest.raises(OutOfStock, match="no location can fulfil"):
        decide(db, clock, variant, NEAR_HACKNEY)


def test_booking_raises_the_count_and_the_same_booking_again_is_a_no_op(db, clock):
    make_network(db, clock)
    window_id = make_windows(db, capacity=2)[-1]
    first, second, third = make_orders(db, clock, 3)

    with db.transaction() as session:
        booking = service.book_window(session, clock=clock, window_id=window_id,
                                      order_id=first, destination=DALSTON, weight_grams=340)
        again = service.book_window(session, clock=clock, window_id=window_id,
                                    order_id=first, destination=DALSTON, weight_grams=340)
        assert again.id == booking.id
        service.book_window(session, clock=clock, window_id=window_id, order_id=second,
                            destination=DALSTON, weight_grams=340)

    with pytest.raises(WindowFull), db.transaction() as session:
        service.book_window(session, clock=clock, window_id=window_id, order_id=third,
                            destination=DALSTON, weight_grams=340)
    with db.transaction() as session:
        assert session.get(DeliveryWindow, window_id).booked == 2
        assert session.scalar(select(func.count()).select_from(WindowBooking)) == 2


def test_a_window_past_its_cutoff_refuses_bookings(db, clock):
    make_network(db, clock)
    past_cutoff = make_windows(db)[0]  # 08:00-10:00, cutoff 06:00
    (order,) = make_orders(db, clock, 1)

    with pytest.raises(WindowClosed), db.transaction() as session:
        service.book_window(session, clock=clock, window_id=past_cutoff, order_id=order,
                            destination=DALSTON, weight_grams=340)
    with db.transaction() as session:
        assert session.get(DeliveryWindow, past_cutoff).booked == 0


def test_an_order_booked_elsewhere_must_cancel_first_and_cancelling_frees_the_place(db, clock):
    make_network(db, clock)
    *_, one, other = make_windows(db)
    (order,) = make_orders(db, clock, 1)
    with db.transaction() as session:
        service.book_window(session, clock=clock, window_id=one, order_id=order,
                            destination=DALSTON, weight_grams=340)

    with pytest.raises(AlreadyExists), db.transaction() as session:
        service.book_window(session, clock=clock, window_id=other, order_id=order,
                            destination=DALSTON, weight_grams=340)
    with db.transaction() as session:
        assert service.cancel_booking(session, clock=clock, order_id=order)
        assert not service.cancel_booking(session, clock=clock, order_id=order)
        service.book_window(session, clock=clock, window_id=other, order_id=order,
                            destination=DALSTON, weight_grams=340)
    with db.transaction() as session:
        assert session.get(DeliveryWindow, one).booked == 0
        assert session.get(DeliveryWindow, other).booked == 1


def test_a_green_window_is_offered_where_a_van_already_goes(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    *_, busy = make_windows(db)
    (order,) = make_orders(db, clock, 1)
    with db.transaction() as session:
        service.book_window(session, clock=clock, window_id=busy, order_id=order,
                            destination=DALSTON, weight_grams=340)
        found = service.gather_options(
            session, lines=[LINE(variant, 1)],
            destination=service.Destination(service.R.GeoPoint(DALSTON.latitude + 0.0005,
                                                               DALSTON.longitude)),
            at=clock.now())
        windows = service.window_options(session, found.options)

    assert windows[0]["window_id"] == busy
    assert (windows[0]["green"], windows[0]["price_amount"]) == (True, 195)
    assert {w["price_amount"] for w in windows[1:]} == {395}


def test_recording_a_decision_keeps_both_costs_and_the_rule(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    make_windows(db)
    (order,) = make_orders(db, clock, 1)
    decision = decide(db, clock, variant, NEAR_HACKNEY)

    with db.transaction() as session:
        service.record_decision(session, clock=clock, decision=decision, order_id=order,
                                customer_id=None)
    with db.transaction() as session:
        row = session.scalar(select(FulfilmentDecisionRow))
        assert (row.path, row.central_cost_amount, row.hub_cost_amount, row.rule) == (
            "hub-window", 610, decision.chosen.cost_amount, "lowest cost")


def test_a_production_run_restocks_the_hub_once_when_due(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, hub=2)
    with db.transaction() as session:
        session.add(Location(code="factory", name="Bermondsey",
                             kind=LocationKind.micro_factory, latitude=51.501,
                             longitude=-0.077))
        session.flush()
        service.start_movement(session, clock=clock, kind=MovementKind.production,
                               source_code="factory", destination_code="hub-hackney",
                               variant_id=variant, quantity=30, lead_hours=48)

    def hub_stock() -> int:
        with db.transaction() as session:
            hub = session.scalar(select(Location.id).where(Location.code == "hub-hackney"))
            return session.get(StockLevel, (hub, variant)).on_hand

    with db.transaction() as session:
        assert service.complete_due_movements(session, clock=clock) == []
    clock.advance(hours=48)
    with db.transaction() as session:
        assert len(service.complete_due_movements(session, clock=clock)) == 1
    with db.transaction() as session:
        assert service.complete_due_movements(session, clock=clock) == []
    assert hub_stock() == 32


def test_a_transfer_takes_stock_at_once_and_refuses_more_than_is_there(db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, central=10, hub=0)

    with pytest.raises(OutOfStock), db.transaction() as session:
        service.start_movement(session, clock=clock, kind=MovementKind.transfer,
                               source_code="central", destination_code="hub-hackney",
                               variant_id=variant, quantity=11, lead_hours=4)
    with db.transaction() as session:
        service.start_movement(session, clock=clock, kind=MovementKind.transfer,
                               source_code="central", destination_code="hub-hackney",
                               variant_id=variant, quantity=4, lead_hours=4)
    clock.advance(hours=4)
    with db.transaction() as session:
        service.complete_due_movements(session, clock=clock)
        levels = dict(session.execute(
            select(Location.code, StockLevel.on_hand)
            .join(StockLevel, StockLevel.location_id == Location.id)
            .where(StockLevel.variant_id == variant)).all())
        events = session.scalars(select(DomainEvent.type).where(
            DomainEvent.type.like("stock.transfer%"))).all()
    assert levels == {"central": 6, "hub-hackney": 4}
    assert sorted(events) == ["stock.transfer_completed", "stock.transfer_started"]
