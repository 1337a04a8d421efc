"""Demo step: orders at every stage of the lifecycle. Paid orders older than a week were
delivered (history: their stage is set without events); the newest ones are walked by
the lifecycle's own services to allocated, picking, packed, shipped (with tracking),
delivered, a failed delivery and a return to sender, so their events, webhooks, mails and
timelines are real. Cancellations need the payment provider after commit, so the demo leaves
them to ``dropline orders cancel``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from dropline.adapters.carriers import ManualCarrier
from dropline.demo import DemoContext, demo_step
from dropline.locations.models import Location
from dropline.orders import lifecycle, shipments
from dropline.orders.carriers import ParcelRequest
from dropline.orders.models import Order, OrderStatus
from dropline.orders.rules import OrderStage

# The newest paid orders' stages, newest first; the rest of the last week's stay paid.
RECENT = ["paid", "paid", "allocated", "allocated", "picking", "packed", "packed", "shipped",
          "shipped", "shipped", "delivered", "delivered", "delivery_failed", "returned"]
PATH = {"paid": [], "allocated": ["allocate"], "picking": ["allocate", "picking"],
        "packed": ["allocate", "picking", "packed"],
        "shipped": ["allocate", "picking", "packed", "ship"],
        "delivered": ["allocate", "picking", "packed", "ship", "delivered"],
        "delivery_failed": ["allocate", "picking", "packed", "ship", "delivery_failed"],
        "returned": ["allocate", "picking", "packed", "ship", "delivery_failed", "returned"]}


@demo_step("order-lifecycle", order=960, label="Orders through their lifecycle")
def seed_lifecycle(ctx: DemoContext) -> str:
    session, clock = ctx.session, ctx.clock
    captured = (OrderStatus.paid, OrderStatus.partially_refunded)
    recent = list(session.scalars(
        select(Order).where(Order.status == OrderStatus.paid, Order.location_id.is_not(None))
        .order_by(Order.created_at.desc(), Order.id.desc()).limit(len(RECENT))))
    delivered = session.execute(
        update(Order).where(Order.status.in_(captured),
                            Order.id.not_in([order.id for order in recent]),
                            Order.created_at < ctx.now - timedelta(days=7))
        .values(stage=OrderStage.delivered)).rowcount
    carrier = ManualCarrier("https://www.royalmail.com/track-your-item#/tracking-results/"
                            "{tracking}")
    counts: dict[str, int] = {}
    for order, stage in zip(recent, RECENT, strict=False):
        for step in PATH[stage]:
            if step == "allocate":
                shipments.allocate(session, clock=clock, order=order)
            elif step == "ship":
                for view in shipments.order_shipments(session, order.id):
                    code = session.scalar(select(Location.code).where(
                        Location.id == view.shipment.location_id)) or ""
                    booking = carrier.book(ParcelRequest(
                        shipment_id=view.shipment.id, order_id=order.id,
                        reference=f"dropline-shipment-{view.shipment.id}",
                        ship_to=dict(order.shipping_address), ship_from_location=code,
                        items=view.units,
                        tracking_number=f"RM{ctx.rng.randint(10**8, 10**9 - 1)}GB"))
                    shipments.record_shipping(session, clock=clock, order=order,
                                              shipment=view.shipment, carrier=carrier.name,
                                              booking=booking)
            elif step in ("delivered", "delivery_failed", "returned"):
                shipments.settle_delivery(session, clock=clock, order=order, outcome=step)
            else:
                lifecycle.move_stage(session, clock=clock, order=order, action=step)
        counts[stage] = counts.get(stage, 0) + 1
    walked = ", ".join(f"{n} {stage.replace('_', ' ')}" for stage, n in counts.items())
    ctx.summary["order stages"] = f"{delivered:,} delivered (history); recent: {walked}"
    return f"{delivered:,} older orders delivered; recent orders: {walked}"
