"""Pop-up use cases: plan a pop-up at a pop-up location, stock it from a hub (stock movements),
open it, close it with a count (reconciliation, counted units back to the hub), request a
48-hour restock from a micro-factory, and the pop-up-to-member conversion figures.

Services take the session first and flush, never commit (the entry point owns the commit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.admin.service import SCOPES
from dropline.catalog.models import Variant
from dropline.catalog.service import get_location_by_code, set_stock
from dropline.clock import Clock, ensure_utc
from dropline.customers.models import Customer
from dropline.customers.service import normalise_email, register_customer
from dropline.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from dropline.events.service import record_event
from dropline.fulfilment.models import MovementKind, StockMovement
from dropline.fulfilment.service import complete_due_movements, start_movement
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.memberships.models import Membership
from dropline.orders.models import Order
from dropline.popups import rules
from dropline.popups.models import Popup, PopupCount, PopupSale, PopupStatus

# Token scopes of this domain, registered where the admin module lists them (import time).
SCOPES.setdefault("popups:read", "read pop-ups, their conversion figures and experiments")
SCOPES.setdefault("popups:write", "plan, stock, open, close and restock pop-ups; experiments")
SCOPES.setdefault("popups:sell", "ring up counter sales at a pop-up")

POP_UP_SOURCE = "pop-up"  # the acquisition source of customers first met at a counter
RESTOCK_LEAD_HOURS = 48.0
CONVERSION_DAYS = 30


@dataclass(frozen=True)
class PopupView:
    popup: Popup
    location: Location
    hub: Location


def create_popup(session: Session, *, clock: Clock, location_code: str, hub_code: str,
                 opens_at: datetime, closes_at: datetime) -> Popup:
    location = get_location_by_code(session, location_code)
    hub = get_location_by_code(session, hub_code)
    if location.kind is not LocationKind.pop_up:
        raise InvalidInput(f"{location_code} is a {location.kind.value}, not a pop-up location",
                           field="location")
    if hub.kind is LocationKind.pop_up:
        raise InvalidInput("a pop-up is stocked from a hub or warehouse, not another pop-up",
                           field="hub")
    opens_at, closes_at = ensure_utc(opens_at), ensure_utc(closes_at)
    if closes_at <= opens_at:
        raise InvalidInput("the pop-up must close after it opens", field="closes_at")
    if session.scalar(select(Popup.id).where(Popup.location_id == location.id)) is not None:
        raise AlreadyExists(f"{location_code} already has a pop-up", field="location")
    popup = Popup(location_id=location.id, hub_location_id=hub.id, status=PopupStatus.planned,
                  opens_at=opens_at, closes_at=closes_at, created_at=clock.now())
    session.add(popup)
    session.flush()
    record_event(session, clock=clock, type="popup.planned", subject_type="popup",
                 subject_id=popup.id, payload={"location": location_code, "hub": hub_code,
                                               "opens_at": opens_at.isoformat(),
                                               "closes_at": closes_at.isoformat()})
    return popup


def plan_popup(session: Session, *, clock: Clock, code: str, hub_code: str, opens_at: datetime,
               closes_at: datetime, name: str = "", address: str = "",
               latitude: float | None = None, longitude: float | None = None) -> Popup:
    """Plans a pop-up at the pop-up location ``code``, which is created first when it is new
    and a ``name`` is given (what the CLI and the console's form both call)."""
    if name.strip() and session.scalar(select(Location.id).where(Location.code == code)) is None:
        if not code.strip():
            raise InvalidInput("a new location needs a code", field="location")
        session.add(Location(code=code.strip(), name=name.strip(), kind=LocationKind.pop_up,
                             address=address.strip(), latitude=latitude, longitude=longitude,
                             active=True))
        session.flush()
    return create_popup(session, clock=clock, location_code=code, hub_code=hub_code,
                        opens_at=opens_at, closes_at=closes_at)


def get_popup(session: Session, code: str) -> PopupView:
    row = session.execute(
        select(Popup, Location).join(Location, Location.id == Popup.location_id)
        .where(Location.code == code)).first()
    if row is None:
        raise NotFound(f"pop-up {code!r} not found")
    hub = session.get(Location, row[0].hub_location_id)
    assert hub is not None
    return PopupView(row[0], row[1], hub)


def list_popups(session: Session) -> list[PopupView]:
    rows = session.execute(select(Popup, Location).join(Location, Location.id == Popup.location_id)
                           .order_by(Popup.opens_at)).all()
    hubs = {loc.id: loc for loc in session.scalars(
        select(Location).where(Location.id.in_({p.hub_location_id for p, _ in rows})))}
    return [PopupView(p, loc, hubs[p.hub_location_id]) for p, loc in rows]


def transfer_in(session: Session, *, clock: Clock, code: str,
                quantities: Mapping[int, int], lead_hours: float = 0.0) -> list[StockMovement]:
    """Moves units from the pop-up's hub to the pop-up (stock movement records; the hub's
    stock is taken now by one conditional UPDATE each, and a lead time of 0 lands them at
    once). Variants in id order, so concurrent transfers lock rows in one order."""
    view = get_popup(session, code)
    if view.popup.status is PopupStatus.closed:
        raise InvalidState(f"{code} is closed")
    movements = [start_movement(session, clock=clock, kind=MovementKind.transfer,
                                source_code=view.hub.code, destination_code=code,
                                variant_id=variant_id, quantity=quantity, lead_hours=lead_hours)
                 for variant_id, quantity in sorted(quantities.items())]
    if lead_hours == 0:
        complete_due_movements(session, clock=clock)
    return movements


def open_popup(session: Session, *, clock: Clock, code: str) -> Popup:
    view = get_popup(session, code)
    if view.popup.status is not PopupStatus.planned:
        raise InvalidState(f"{code} is {view.popup.status.value}; only a planned pop-up opens")
    view.popup.status = PopupStatus.open
    view.location.active = True
    session.flush()
    record_event(session, clock=clock, type="popup.opened", subject_type="popup",
                 subject_id=view.popup.id, payload={"location": code})
    return view.popup


def stock_at(session: Session, location_id: int) -> dict[int, int]:
    return dict(session.execute(select(StockLevel.variant_id, StockLevel.on_hand)
                                .where(StockLevel.location_id == location_id)).all())


@dataclass(frozen=True)
class CloseReport:
    code: str
    lines: list[rules.CountLine]
    transferred_back: int

    @property
    def variance_units(self) -> int:
        return sum(line.variance for line in self.lines)


def close_popup(session: Session, *, clock: Clock, code: str, counted: Mapping[int, int],
                lead_hours: float = 4.0) -> CloseReport:
    """Closes with a count: each variant's expected units (the stock row, i.e. transfers in
    less sales) against what staff counted; the stock row is set to the count (a stock take),
    then every counted unit is transferred back to the hub, so the pop-up ends empty."""
    view = get_popup(session, code)
    if view.popup.status is PopupStatus.closed:
        raise InvalidState(f"{code} is already closed")
    if any(q < 0 for q in counted.values()):
        raise InvalidInput("counts cannot be negative", field="counted")
    expected = stock_at(session, view.location.id)
    unknown = set(counted) - set(expected)
    if unknown and len(session.scalars(select(Variant.id).where(
            Variant.id.in_(unknown))).all()) != len(unknown):
        raise NotFound(f"unknown variant(s) in the count: {sorted(unknown)}", field="counted")
    skus = dict(session.execute(select(Variant.id, Variant.sku).where(
        Variant.id.in_(set(expected) | set(counted)))).all())
    lines = rules.reconcile(expected, counted, skus)

    back = 0
    for line in lines:
        set_stock(session, clock=clock, location_code=code, variant_id=line.variant_id,
                  on_hand=line.counted, actor=f"popup-close:{code}")
        if line.counted > 0:
            start_movement(session, clock=clock, kind=MovementKind.transfer, source_code=code,
                           destination_code=view.hub.code, variant_id=line.variant_id,
                           quantity=line.counted, lead_hours=lead_hours)
            back += line.counted
        session.add(PopupCount(popup_id=view.popup.id, variant_id=line.variant_id,
                               expected=line.expected, counted=line.counted,
                               transferred_back=line.counted))
    view.popup.status = PopupStatus.closed
    view.popup.closed_at = clock.now()
    session.flush()
    record_event(session, clock=clock, type="popup.closed", subject_type="popup",
                 subject_id=view.popup.id,
                 payload={"location": code, "variance_units": sum(li.variance for li in lines),
                          "transferred_back": back,
                          "variances": {li.sku: li.variance for li in lines if li.variance}})
    return CloseReport(code, lines, back)


def close_report(session: Session, *, code: str) -> CloseReport:
    view = get_popup(session, code)
    rows = session.execute(select(PopupCount, Variant.sku).join(
        Variant, Variant.id == PopupCount.variant_id).where(PopupCount.popup_id == view.popup.id)
        .order_by(PopupCount.variant_id)).all()
    lines = [rules.CountLine(c.variant_id, sku, c.expected, c.counted) for c, sku in rows]
    return CloseReport(code, lines, sum(c.transferred_back for c, _ in rows))


def request_restock(session: Session, *, clock: Clock, code: str, factory_code: str,
                    quantities: Mapping[int, int],
                    lead_hours: float = RESTOCK_LEAD_HOURS) -> list[StockMovement]:
    """A production run at a micro-factory delivered to the pop-up in ``lead_hours`` (the
    fulfilment module's movements: the job lands them when due)."""
    view = get_popup(session, code)
    if view.popup.status is PopupStatus.closed:
        raise InvalidState(f"{code} is closed; restock its hub instead")
    if not quantities:
        raise InvalidInput("name at least one variant to restock", field="quantities")
    return [start_movement(session, clock=clock, kind=MovementKind.production,
                           source_code=factory_code, destination_code=code,
                           variant_id=variant_id, quantity=quantity, lead_hours=lead_hours)
            for variant_id, quantity in sorted(quantities.items())]


# ---------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class PopupConversion:
    code: str
    name: str
    status: str
    opens_at: datetime
    closes_at: datetime
    sales: int
    revenue_amount: int
    buyers: int
    members: int
    rate: float
    interval: rules.Interval


def conversion_report(session: Session, *, within_days: int = CONVERSION_DAYS,
                      codes: Sequence[str] | None = None) -> list[PopupConversion]:
    """Per pop-up: counter sales, revenue, distinct buyers, how many of them started a
    membership within ``within_days`` of their first purchase there, and the rate with its
    Wilson interval."""
    views = [v for v in list_popups(session) if codes is None or v.location.code in codes]
    ids = {v.popup.id: v.location.code for v in views}
    rows = session.execute(select(PopupSale.popup_id, PopupSale.customer_id, PopupSale.sold_at,
                                  Order.total_amount)
                           .join(Order, Order.id == PopupSale.order_id)
                           .where(PopupSale.popup_id.in_(ids), Order.paid_at.is_not(None))).all()
    purchases = [rules.PopupPurchase(ids[pid], cid, at) for pid, cid, at, _ in rows]
    starts: dict[int, list[datetime]] = {}
    for customer_id, started in session.execute(
            select(Membership.customer_id, Membership.started_at)
            .where(Membership.customer_id.in_({p.customer_id for p in purchases}))):
        starts.setdefault(customer_id, []).append(started)
    figures = rules.conversion_by_popup(purchases, starts, within_days=within_days)
    out = []
    for view in views:
        code = view.location.code
        mine = [r for r in rows if r[0] == view.popup.id]
        fig = figures.get(code, rules.Conversion(code, 0, 0))
        out.append(PopupConversion(
            code, view.location.name, view.popup.status.value, view.popup.opens_at,
            view.popup.closes_at, len(mine), sum(r[3] for r in mine), fig.buyers, fig.members,
            fig.rate, rules.wilson(fig.members, fig.buyers)))
    return out


def find_or_create_buyer(session: Session, *, clock: Clock, email: str, name: str,
                         popup_code: str) -> Customer:
    """The buyer at the counter by email; a new one is registered with acquisition source
    "pop-up" and the pop-up as campaign (first touch wins: an existing customer keeps theirs).
    The random password is never shown: the buyer sets their own from the sign-up link."""
    import secrets

    email = normalise_email(email)
    customer = session.scalar(select(Customer).where(Customer.email == email))
    if customer is not None:
        return customer
    return register_customer(session, clock=clock, email=email, password=secrets.token_urlsafe(24),
                             name=name, acquisition_source=POP_UP_SOURCE,
                             acquisition_campaign=popup_code)


def popup_code_of(session: Session, popup_id: int) -> str:
    code = session.scalar(select(Location.code).join(Popup, Popup.location_id == Location.id)
                          .where(Popup.id == popup_id))
    if code is None:
        raise NotFound(f"pop-up {popup_id} not found")
    return code
