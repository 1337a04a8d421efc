"""The demo shop has orders at every stage of the lifecycle, walked by the real services."""

from __future__ import annotations

from sqlalchemy import func, select

from dropline.demo import seed_demo
from dropline.orders.models import Order, Shipment
from dropline.orders.rules import OrderStage


def test_the_demo_seeds_orders_at_every_stage_with_tracking(db, settings, clock):
    summary = seed_demo(db, settings=settings, clock=clock, customers=40, seed=7)

    with db.transaction() as session:
        stages = dict(session.execute(select(Order.stage, func.count())
                                     .group_by(Order.stage)).all())
        tracked = session.scalar(select(func.count()).select_from(Shipment)
                                 .where(Shipment.tracking_number.is_not(None)))
    for stage in (OrderStage.paid, OrderStage.allocated, OrderStage.picking, OrderStage.packed,
                  OrderStage.shipped, OrderStage.delivered, OrderStage.delivery_failed,
                  OrderStage.returned):
        assert stages.get(stage, 0) >= 1, (stage, stages)
    assert tracked >= 5
    assert "recent:" in summary["order stages"]
