"""The console's order list: search and filters over orders (a read model; it joins the
drops and locations the orders domain does not know).

Search matches an order number (``1042`` or ``#1042``), an email, a customer's name, or the
name or postcode in the shipping address; filters narrow by money status, stage, fulfilment
path, drop, creation date range (the shop's days, UTC bounds) and location."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import String, cast, exists, or_, select
from sqlalchemy.orm import Session

from dropline.customers.models import Customer
from dropline.drops.models import DropVariant
from dropline.locations.models import Location
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import OrderStage

__all__ = ["OrderFilter", "OrderRow", "search_orders"]


@dataclass(frozen=True)
class OrderFilter:
    q: str = ""
    status: OrderStatus | None = None
    stage: OrderStage | None = None
    path: str = ""
    drop_id: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive
    location: str = ""  # a location code


@dataclass(frozen=True)
class OrderRow:
    id: int
    created_at: datetime
    email: str
    name: str
    postcode: str
    status: str
    stage: str
    path: str
    total_amount: int
    currency: str


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_orders(session: Session, f: OrderFilter, *, limit: int, offset: int
                  ) -> list[OrderRow]:
    query = (select(Order, Customer.name).join(Customer, Customer.id == Order.customer_id)
             .order_by(Order.id.desc()))
    term = f.q.strip().lstrip("#")
    if term:
        like = _like(term)
        clauses = [Order.email.ilike(like, escape="\\"), Customer.name.ilike(like, escape="\\"),
                   cast(Order.shipping_address, String).ilike(like, escape="\\")]
        if term.isdigit() and len(term) <= 15:
            clauses.append(Order.id == int(term))
        query = query.where(or_(*clauses))
    if f.status is not None:
        query = query.where(Order.status == f.status)
    if f.stage is not None:
        query = query.where(Order.stage == f.stage)
    if f.path:
        query = query.where(Order.fulfilment_path == f.path)
    if f.drop_id is not None:
        query = query.where(exists().where(
            OrderLine.order_id == Order.id, DropVariant.variant_id == OrderLine.variant_id,
            DropVariant.drop_id == f.drop_id))
    if f.since is not None:
        query = query.where(Order.created_at >= datetime.combine(f.since, time(), tzinfo=UTC))
    if f.until is not None:
        query = query.where(Order.created_at < datetime.combine(
            f.until + timedelta(days=1), time(), tzinfo=UTC))
    if f.location:
        query = query.join(Location, Location.id == Order.location_id).where(
            Location.code == f.location)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return [OrderRow(id=o.id, created_at=o.created_at, email=o.email, name=name or
                     str(o.shipping_address.get("name", "")),
                     postcode=str(o.shipping_address.get("postcode", "")),
                     status=o.status.value, stage=o.stage.value, path=o.fulfilment_path,
                     total_amount=o.total_amount, currency=o.currency) for o, name in rows]


