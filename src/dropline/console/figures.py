"""The numbers the console's pages and the playbooks share, each one query over the shop's own
tables (reads only). Optional domains (memberships) are read through ``optional`` so a shop
without them shows "not set up" rather than a made-up zero."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.drops import service as drops
from dropline.drops.models import Drop, DropHold, DropQueueEntry, HoldStatus
from dropline.fulfilment.models import (
    BookingStatus,
    DeliveryWindow,
    RoutePlanRow,
    WindowBooking,
)
from dropline.locations.models import Location
from dropline.memberships.reports import metrics
from dropline.orders.models import Order, OrderStatus

LONDON = ZoneInfo("Europe/London")
PAID = (OrderStatus.paid, OrderStatus.partially_refunded, OrderStatus.refunded)


def module_built(name: str) -> bool:
    """Whether ``dropline.<name>`` is installed: pages of modules not built yet say so."""
    return importlib.util.find_spec(f"dropline.{name}") is not None


def local_day(at: datetime) -> date:
    return at.astimezone(LONDON).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=LONDON)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class DropRow:
    id: int
    slug: str
    name: str
    starts_at: datetime
    ends_at: datetime
    early_access_minutes: int
    state: str
    cap: int
    sold: int
    held: int
    remaining: int
    waiting: int  # in the waiting room, not yet admitted
    per_person_limit: int
    joined: int = 0  # everyone who ever joined its waiting room

    @property
    def sell_through(self) -> float:
        return self.sold / self.cap if self.cap else 0.0


def drop_row(session: Session, *, clock: Clock, drop: Drop) -> DropRow:
    now = clock.now()
    cap = drops.cap_of(drop, drops.drop_variants(session, drop.id))
    remaining = sum(drops.remaining_by_pool(session, drop.id).values())
    sold = session.scalar(select(func.coalesce(func.sum(DropHold.quantity), 0))
                          .join(Order, Order.id == DropHold.order_id)
                          .where(DropHold.drop_id == drop.id, Order.status.in_(PAID))) or 0
    held = session.scalar(select(func.coalesce(func.sum(DropHold.quantity), 0)).where(
        DropHold.drop_id == drop.id, DropHold.status == HoldStatus.active,
        DropHold.expires_at > now)) or 0
    joined, waiting = session.execute(
        select(func.count(), func.count().filter(DropQueueEntry.tokens_issued == 0))
        .where(DropQueueEntry.drop_id == drop.id)).one()
    return DropRow(drop.id, drop.slug, drop.name, drop.starts_at, drop.ends_at,
                   drop.early_access_minutes, drops.state_of(session, clock=clock,
                                                             drop=drop).value,
                   cap, int(sold), int(held), remaining, int(waiting), drop.per_person_limit,
                   int(joined))


def drop_rows(session: Session, *, clock: Clock, limit: int = 50) -> list[DropRow]:
    """Upcoming drops first (soonest first), then past ones (latest first)."""
    now = clock.now()
    upcoming = session.scalars(select(Drop).where(Drop.ends_at > now)
                               .order_by(Drop.starts_at).limit(limit)).all()
    past = session.scalars(select(Drop).where(Drop.ends_at <= now)
                           .order_by(Drop.starts_at.desc()).limit(limit)).all()
    return [drop_row(session, clock=clock, drop=d) for d in [*upcoming, *past]]


def next_drop(session: Session, *, clock: Clock) -> Drop | None:
    return session.scalar(select(Drop).where(Drop.starts_at > clock.now())
                          .order_by(Drop.starts_at).limit(1))


@dataclass
class WindowLoad:
    id: int
    hub_code: str
    hub_name: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int
    status: str
    planned: bool

    @property
    def load(self) -> float:
        return self.booked / self.capacity if self.capacity else 0.0


@dataclass
class Stop:
    latitude: float
    longitude: float
    hub_code: str
    label: str


@dataclass
class DeliveryDay:
    day: date
    windows: list[WindowLoad] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)

    @property
    def booked(self) -> int:
        return sum(w.booked for w in self.windows)

    @property
    def capacity(self) -> int:
        return sum(w.capacity for w in self.windows)

    @property
    def routed(self) -> int:
        return sum(1 for w in self.windows if w.planned)


def delivery_day(session: Session, *, day: date) -> DeliveryDay:
    start, end = day_bounds(day)
    planned = set(session.scalars(select(RoutePlanRow.window_id)))
    result = DeliveryDay(day)
    for window, code, name in session.execute(
            select(DeliveryWindow, Location.code, Location.name)
            .join(Location, Location.id == DeliveryWindow.location_id)
            .where(DeliveryWindow.starts_at >= start, DeliveryWindow.starts_at < end)
            .order_by(Location.code, DeliveryWindow.starts_at)):
        result.windows.append(WindowLoad(window.id, code, name, window.starts_at, window.ends_at,
                                         window.capacity, window.booked, window.status.value,
                                         window.id in planned))
    for lat, lon, code, label in session.execute(
            select(WindowBooking.latitude, WindowBooking.longitude, Location.code,
                   WindowBooking.label)
            .join(DeliveryWindow, DeliveryWindow.id == WindowBooking.window_id)
            .join(Location, Location.id == DeliveryWindow.location_id)
            .where(DeliveryWindow.starts_at >= start, DeliveryWindow.starts_at < end,
                   WindowBooking.status == BookingStatus.booked)):
        result.stops.append(Stop(lat, lon, code, label))
    return result


@dataclass(frozen=True)
class Overview:
    currency: str
    revenue_30d: int  # net of refunds, minor units
    orders_30d: int
    paid_orders: int
    customers: int
    mrr: int | None  # None: memberships not set up
    members: int | None
    next_drop: DropRow | None
    deliveries_today: DeliveryDay


def overview(session: Session, *, clock: Clock, currency: str) -> Overview:
    now = clock.now()
    since = now - timedelta(days=30)
    revenue, refunded, orders = session.execute(
        select(func.coalesce(func.sum(Order.total_amount), 0),
               func.coalesce(func.sum(Order.refunded_amount), 0), func.count())
        .where(Order.status.in_(PAID), Order.currency == currency, Order.created_at >= since,
               Order.created_at <= now)).one()
    paid = session.scalar(select(func.count()).select_from(Order)
                          .where(Order.status.in_(PAID))) or 0
    customers = session.scalar(select(func.count()).select_from(Customer)) or 0
    mrr = members = None
    if module_built("memberships"):
        figures = metrics(session, since=since, until=now)
        if figures.tiers:
            mrr, members = figures.mrr, sum(t.live for t in figures.tiers)
    upcoming = next_drop(session, clock=clock)
    return Overview(currency, int(revenue) - int(refunded), int(orders), int(paid), customers,
                    mrr, members,
                    drop_row(session, clock=clock, drop=upcoming) if upcoming else None,
                    delivery_day(session, day=local_day(now)))
