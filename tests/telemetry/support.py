"""A small shop written straight into the tables telemetry reads (customers, paid orders with
lines, refunds, order events), so service and API tests know every figure in advance."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dropline.catalog.models import ConditionGrade
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.events.models import DomainEvent
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.payments.models import Payment, PaymentStatus, Refund, RefundStatus

UTC = dt.UTC


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


class Shop:
    """``Shop(db, variant_id)``; ``customer(...)`` then ``order(...)`` and ``refund(...)``."""

    def __init__(self, db: Database, variant_id: int) -> None:
        self.db = db
        self.variant_id = variant_id
        self._events = 0

    def customer(self, email: str, *, source: str = "direct", signed_up: str = "2026-01-01"
                 ) -> int:
        with self.db.transaction() as session:
            customer = Customer(email=email, password_hash="!", acquisition_source=source,
                                created_at=at(signed_up, 8))
            session.add(customer)
            session.flush()
            return customer.id

    def order(self, customer_id: int, day: str, amount: int, *, family: str = "candles",
              path: str = "central", tags: dict[str, Any] | None = None,
              refunded: int = 0) -> int:
        when = at(day)
        with self.db.transaction() as session:
            status = (OrderStatus.paid if not refunded else OrderStatus.refunded
                      if refunded == amount else OrderStatus.partially_refunded)
            order = Order(customer_id=customer_id, email=f"c{customer_id}@example.com",
                          status=status, currency="GBP", subtotal_amount=amount,
                          discount_amount=0, shipping_amount=0, total_amount=amount,
                          refunded_amount=refunded, fulfilment_path=path, created_at=when,
                          paid_at=when, shipping_address={})
            session.add(order)
            session.flush()
            session.add(OrderLine(order_id=order.id, variant_id=self.variant_id, sku="SKU",
                                  product_name="Thing", variant_name="one",
                                  product_family=family, condition_grade=ConditionGrade.new,
                                  unit_price_amount=amount, quantity=1,
                                  line_total_amount=amount))
            session.add(Payment(order_id=order.id, provider="test",
                                idempotency_key=f"pay-{order.id}", provider_ref=f"ch-{order.id}",
                                status=PaymentStatus.succeeded, amount=max(amount, 1),
                                currency="GBP", created_at=when, updated_at=when))
            self._events += 1
            session.add(DomainEvent(
                event_id=f"00000000-0000-0000-0000-{self._events:012d}", type="order.paid",
                subject_type="order", subject_id=str(order.id), customer_id=customer_id,
                occurred_at=when, payload={"order_id": order.id, "total_amount": amount,
                                           "product_families": [family],
                                           "fulfilment_path": path, **(tags or {})}))
            session.flush()
            return order.id

    def refund(self, order_id: int, day: str, amount: int) -> None:
        with self.db.transaction() as session:
            payment = session.query(Payment).filter_by(order_id=order_id).one()
            session.add(Refund(order_id=order_id, payment_id=payment.id, amount=amount,
                               currency="GBP", reason="test", status=RefundStatus.succeeded,
                               idempotency_key=f"refund-{order_id}-{day}", actor="test",
                               created_at=at(day)))
