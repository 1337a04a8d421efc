""""Out for delivery": when a hub route leaves (its planned departure has passed), each order on
it is mailed its window and expected time, once, through the outbox and a real SMTP server."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dropline.adapters.routing import PyVRPSolver
from dropline.fulfilment import rules as R
from dropline.fulfilment import service as fulfilment
from dropline.fulfilment.models import RouteRow
from dropline.fulfilment.planning import plan_window
from dropline.notifications.jobs import OUT_FOR_DELIVERY_LOOKBACK, queue_out_for_delivery
from dropline.orders.models import Order
from dropline.orders.rules import OrderStage
from tests.fulfilment.builders import HACKNEY, make_network, make_orders, make_windows
from tests.notifications.conftest import send_outbox


def _planned_window(db, clock, orders: int) -> tuple[list[int], list]:
    make_network(db, clock, vehicles=1)
    window_id = make_windows(db)[-1]  # 18:00-20:00, cutoff 16:00
    order_ids = make_orders(db, clock, orders)
    with db.transaction() as session:
        for n, order_id in enumerate(order_ids):
            fulfilment.book_window(session, clock=clock, window_id=window_id, order_id=order_id,
                                   destination=R.GeoPoint(HACKNEY.latitude + 0.002 * n,
                                                          HACKNEY.longitude),
                                   weight_grams=1_000, label=f"E8 {order_id}")
    clock.advance(hours=6)  # past the cutoff
    with db.transaction() as session:
        plan_window(session, clock=clock, window_id=window_id,
                    solver=PyVRPSolver(max_iterations=200), max_seconds=1)
        departures = sorted(session.scalars(select(RouteRow.departs_at)))
    return order_ids, departures


def test_each_order_on_a_route_is_mailed_once_when_the_route_leaves(db, clock, smtp_server):
    inbox, port = smtp_server
    order_ids, (departs,) = _planned_window(db, clock, 2)
    clock.current = departs - timedelta(seconds=1)
    before = queue_out_for_delivery(db, clock=clock)
    clock.advance(seconds=1)
    on_departure = queue_out_for_delivery(db, clock=clock)
    again = queue_out_for_delivery(db, clock=clock)
    report = send_outbox(db, clock, port)

    assert (before, on_departure, again, report.sent) == (0, 2, 0, 2)
    subjects = sorted(m["Subject"].strip() for m in inbox.messages)
    assert subjects == [f"Your Fig & Smoke order {i} arrives today, between 18:00 and 20:00"
                        for i in sorted(order_ids)]
    text = " ".join(inbox.messages[0].get_body(("plain",)).get_content().split())
    assert "left our" in text and "hub and arrives today, between 18:00 and 20:00" in text
    assert "(we expect to be with you around 18:" in text


def test_a_cancelled_order_or_a_route_long_gone_is_not_mailed(db, clock):
    order_ids, (departs,) = _planned_window(db, clock, 2)
    with db.transaction() as session:
        session.get(Order, order_ids[0]).stage = OrderStage.cancelled

    clock.current = departs + OUT_FOR_DELIVERY_LOOKBACK
    late = queue_out_for_delivery(db, clock=clock)
    clock.current = departs
    on_time = queue_out_for_delivery(db, clock=clock)

    assert (late, on_time) == (0, 1)
