"""A small drop added to a shop's history: the "6-unit test drop" a planner must shrug off."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import FrozenClock
from dropline.customers.models import Customer
from dropline.drops import service as drops
from dropline.drops.models import Drop, DropHold, HoldSource, HoldStatus
from dropline.orders.models import Order, OrderStatus


def add_small_drop(session: Session, *, now: datetime, units: int = 6, days_ago: int = 5
                   ) -> Drop:
    """An ended drop of ``units`` units, all sold (one paid order each), that started
    ``days_ago`` days before ``now``, on the variants of the shop's latest drop."""
    latest = session.scalars(select(Drop).where(Drop.starts_at < now)
                             .order_by(Drop.starts_at.desc())).first()
    assert latest is not None, "the shop needs a past drop"
    variant = drops.drop_variants(session, latest.id)[0].variant_id
    starts = (now - timedelta(days=days_ago)).replace(hour=18, minute=0, second=0,
                                                       microsecond=0)
    drop = drops.create_drop(
        session, clock=FrozenClock(starts - timedelta(days=3)), slug="test-drop",
        name="Test drop", variants=[drops.VariantCap(variant, None)], shared_cap=units,
        per_person_limit=1, actor="test",
        schedule=drops.DropSchedule(starts_at=starts, ends_at=starts + timedelta(days=1)))
    buyers = list(session.scalars(select(Customer).order_by(func.random()).limit(units)))
    for customer in buyers:
        paid = starts + timedelta(minutes=5)
        order = Order(customer_id=customer.id, email=customer.email, status=OrderStatus.paid,
                      currency="GBP", subtotal_amount=4000, total_amount=4000,
                      created_at=paid, paid_at=paid)
        session.add(order)
        session.flush()
        session.add(DropHold(
            drop_id=drop.id, customer_id=customer.id, status=HoldStatus.converted,
            source=HoldSource.queue, quantity=1, lines=[{"variant_id": variant, "quantity": 1}],
            takes=[], created_at=paid, expires_at=paid + timedelta(minutes=10),
            closed_at=paid, order_id=order.id))
    session.flush()
    return drop
