"""Order reads, and the order-state writes the checkout flow is built from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.errors import NotFound
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import Payment, Refund


@dataclass(frozen=True)
class OrderDetail:
    order: Order
    lines: list[OrderLine]
    payments: list[Payment]
    refunds: list[Refund]


def get_order(session: Session, order_id: int, *, customer_id: int | None = None) -> Order:
    """With ``customer_id``, another customer's order is reported as not found."""
    order = session.get(Order, order_id)
    if order is None or (customer_id is not None and order.customer_id != customer_id):
        raise NotFound(f"order {order_id} not found")
    return order


def order_detail(session: Session, order: Order) -> OrderDetail:
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)
                            .order_by(OrderLine.id)).all()
    payments = session.scalars(select(Payment).where(Payment.order_id == order.id)
                               .order_by(Payment.id)).all()
    refunds = session.scalars(select(Refund).where(Refund.order_id == order.id)
                              .order_by(Refund.id)).all()
    return OrderDetail(order, list(lines), list(payments), list(refunds))


def list_orders(
    session: Session, *, customer_id: int | None = None, status: OrderStatus | None = None,
    limit: int = 50, offset: int = 0,
) -> list[Order]:
    query = select(Order).order_by(Order.id.desc())
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if status is not None:
        query = query.where(Order.status == status)
    return list(session.scalars(query.limit(limit).offset(offset)))


def find_by_checkout_reference(session: Session, reference: str) -> Order | None:
    return session.scalar(select(Order).where(Order.checkout_reference == reference))


def count_orders(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Order)) or 0
