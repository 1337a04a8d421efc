"""Delivery-window templates: how each hub's windows are cut (length, capacity, booking
cutoff, first start) and how many days ahead they are kept. ``roll_windows_forward`` creates
the missing windows of the next ``days_ahead`` days of every active template; the scheduler
runs it with the other fulfilment jobs (``fulfilment.jobs``), and running it again creates
nothing (``create_windows`` keeps the windows already there). Which days a hub delivers, and
between which hours, come from its opening hours. Flush, never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.catalog.service import get_location_by_code
from dropline.clock import Clock
from dropline.errors import DomainError, InvalidInput, NotFound
from dropline.events.service import record_event
from dropline.fulfilment.models import DeliveryWindow, FulfilmentSite, WindowTemplate
from dropline.fulfilment.service import create_windows
from dropline.locations.models import Location, LocationKind

__all__ = ["TemplateSpec", "list_templates", "remove_template", "roll_windows_forward",
           "set_template"]


@dataclass(frozen=True)
class TemplateSpec:
    window_minutes: int = 120
    capacity: int = 40
    cutoff_minutes: int = 120
    first_start: time | None = None
    days_ahead: int = 14
    active: bool = True


def _check(spec: TemplateSpec) -> None:
    if not 15 <= spec.window_minutes <= 720:
        raise InvalidInput("a window lasts 15 to 720 minutes", field="window_minutes")
    if not 1 <= spec.capacity <= 10_000:
        raise InvalidInput("capacity is 1 to 10,000 orders a window", field="capacity")
    if not 0 <= spec.cutoff_minutes <= 2880:
        raise InvalidInput("the cutoff is 0 to 2880 minutes before a window starts",
                           field="cutoff_minutes")
    if not 1 <= spec.days_ahead <= 60:
        raise InvalidInput("keep 1 to 60 days of windows ahead", field="days_ahead")


def set_template(session: Session, *, clock: Clock, location_code: str, spec: TemplateSpec
                 ) -> WindowTemplate:
    """Creates or replaces the hub's template (one per hub). Windows already created keep
    their length and capacity; the next roll-forward cuts new days the new way."""
    _check(spec)
    location = get_location_by_code(session, location_code)
    if location.kind is not LocationKind.micro_hub:
        raise InvalidInput(f"{location_code} is not a micro-hub", field="location")
    if session.get(FulfilmentSite, location.id) is None:
        raise InvalidInput(f"{location_code} has no opening hours yet: configure the site "
                           "first (dropline fulfilment)", field="location")
    template = session.scalar(select(WindowTemplate).where(
        WindowTemplate.location_id == location.id))
    if template is None:
        template = WindowTemplate(location_id=location.id)
        session.add(template)
    for name, value in spec.__dict__.items():
        setattr(template, name, value)
    template.updated_at = clock.now()
    session.flush()
    record_event(session, clock=clock, type="window_template.set", subject_type="location",
                 subject_id=location.id, payload={"location": location_code,
                                                  **{k: str(v) for k, v in spec.__dict__.items()}})
    return template


def list_templates(session: Session) -> list[tuple[WindowTemplate, Location]]:
    return [(template, location) for template, location in session.execute(
        select(WindowTemplate, Location).join(Location, Location.id == WindowTemplate.location_id)
        .order_by(Location.code))]


def remove_template(session: Session, *, clock: Clock, location_code: str) -> None:
    """Stops rolling the hub's windows forward; windows already created stay bookable."""
    location = get_location_by_code(session, location_code)
    template = session.scalar(select(WindowTemplate).where(
        WindowTemplate.location_id == location.id))
    if template is None:
        raise NotFound(f"{location_code} has no window template")
    session.delete(template)
    session.flush()
    record_event(session, clock=clock, type="window_template.removed",
                 subject_type="location", subject_id=location.id,
                 payload={"location": location_code})


def _count(session: Session, location_id: int) -> int:
    return session.scalar(select(func.count()).select_from(DeliveryWindow).where(
        DeliveryWindow.location_id == location_id)) or 0


def roll_windows_forward(session: Session, *, clock: Clock) -> dict[str, int]:
    """For every active template, the windows of today and the next ``days_ahead - 1`` days
    (the hub's local days) that do not exist yet; windows whose booking cutoff has already
    passed are not created. Returns the windows created per hub code; a hub whose
    configuration is refused is skipped, with -1 for it."""
    now = clock.now()
    created: dict[str, int] = {}
    for template, location in list_templates(session):
        if not template.active:
            continue
        site = session.get(FulfilmentSite, location.id)
        if site is None:
            created[location.code] = -1
            continue
        today = now.astimezone(ZoneInfo(site.timezone)).date()
        before = _count(session, location.id)
        try:
            with session.begin_nested():  # a refused hub leaves the others' windows
                for offset in range(template.days_ahead):
                    create_windows(session, location_code=location.code,
                                   day=today + timedelta(days=offset),
                                   window_minutes=template.window_minutes,
                                   capacity=template.capacity,
                                   cutoff_minutes=template.cutoff_minutes,
                                   first_start=template.first_start, not_before=now)
        except DomainError:
            created[location.code] = -1
            continue
        created[location.code] = _count(session, location.id) - before
    return created


def window_horizon(session: Session, location_id: int, *, after: datetime) -> datetime | None:
    """The start of the hub's last window after ``after`` (how far ahead it is covered)."""
    return session.scalar(select(func.max(DeliveryWindow.starts_at)).where(
        DeliveryWindow.location_id == location_id, DeliveryWindow.starts_at > after))
