"""A window's capacity holds under concurrent bookings: real threads, one transaction each.
On PostgreSQL they interleave for real; on SQLite the engine serialises writers and the same
invariant holds."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from dropline.fulfilment import service
from dropline.fulfilment.models import BookingStatus, DeliveryWindow, WindowBooking
from tests.orders.test_races import race

from .builders import DALSTON, make_network, make_orders, make_windows


def test_a_crowd_booking_the_last_places_never_overfills_the_window(db, clock):
    make_network(db, clock)
    window_id = make_windows(db, capacity=5)[-1]
    orders = make_orders(db, clock, 16)

    def book(i: int) -> int:
        with db.transaction() as session:
            return service.book_window(session, clock=clock, window_id=window_id,
                                       order_id=orders[i], destination=DALSTON,
                                       weight_grams=340).id

    results = race(16, book)

    assert Counter(type(r).__name__ for r in results) == {"int": 5, "WindowFull": 11}, results
    with db.transaction() as session:
        assert session.get(DeliveryWindow, window_id).booked == 5
        assert session.scalar(select(func.count()).select_from(WindowBooking).where(
            WindowBooking.status == BookingStatus.booked)) == 5


def test_bookings_and_cancellations_racing_keep_the_count_equal_to_the_live_bookings(db, clock):
    make_network(db, clock)
    window_id = make_windows(db, capacity=4)[-1]
    orders = make_orders(db, clock, 12)
    with db.transaction() as session:
        for order in orders[:4]:
            service.book_window(session, clock=clock, window_id=window_id, order_id=order,
                                destination=DALSTON, weight_grams=340)

    def work(i: int) -> object:
        with db.transaction() as session:
            if i < 4:
                return service.cancel_booking(session, clock=clock, order_id=orders[i])
            return service.book_window(session, clock=clock, window_id=window_id,
                                       order_id=orders[i], destination=DALSTON,
                                       weight_grams=340).id

    race(12, work)

    with db.transaction() as session:
        window = session.get(DeliveryWindow, window_id)
        live = session.scalar(select(func.count()).select_from(WindowBooking).where(
            WindowBooking.window_id == window_id, WindowBooking.status == BookingStatus.booked))
        assert window.booked == live <= window.capacity
