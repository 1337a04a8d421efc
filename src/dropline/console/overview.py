"""Figures for the console's overview page (reads only): console data, so it sits with the
console, above orders, not in admin (users, tokens and scopes, which risk uses)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.customers.models import Customer
from dropline.orders.models import Order, OrderStatus


@dataclass(frozen=True)
class Overview:
    customers: int
    paid_orders: int
    revenue_amount: int  # net of refunds, minor units
    refunded_amount: int
    currency: str


def shop_overview(session: Session, currency: str = "GBP") -> Overview:
    paid = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)
    orders, revenue, refunded = session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.total_amount), 0),
               func.coalesce(func.sum(Order.refunded_amount), 0))
        .where(Order.status.in_(paid), Order.currency == currency)
    ).one()
    customers = session.scalar(select(func.count()).select_from(Customer)) or 0
    # PostgreSQL returns NUMERIC for SUM(BIGINT): money stays int.
    return Overview(customers=customers, paid_orders=int(orders),
                    revenue_amount=int(revenue) - int(refunded), refunded_amount=int(refunded),
                    currency=currency)
