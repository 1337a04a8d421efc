"""Admin pages for fulfilment, rendered on the server: a window's route sheet with its route
map (inline SVG, no CDN), printable for the drivers, the decision tree, and the hubs'
delivery-window templates (a form per hub; the scheduler keeps each hub's windows
``days_ahead`` days ahead, ``fulfilment.window_templates``).

All are console pages: an admin signed in to /admin (cookie session)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from dropline.fulfilment.decision_tree import tree_html
from dropline.fulfilment.planning import route_sheet
from dropline.fulfilment.routemap import route_map_svg
from dropline.fulfilment.service import load_rules
from dropline.schemas import IdPath
from dropline.errors import DomainError
from dropline.fulfilment.models import FulfilmentSite
from dropline.fulfilment.window_templates import (
    TemplateSpec,
    list_templates,
    roll_windows_forward,
    set_template,
    window_horizon,
)
from dropline.locations.models import Location, LocationKind
from dropline.services import Services
from dropline.web.admin import AdminPageUser, AdminViewer, render, staff_with
from dropline.web.deps import ServicesDep
from dropline.web.forms import FormError, done, from_domain, parse_int
from dropline.web.deps import SessionDep, SettingsDep
from dropline.web.templating import templates

router = APIRouter(prefix="/admin/fulfilment", include_in_schema=False)
FulfilmentReader = Annotated[AdminViewer, staff_with("fulfilment:read")]
# No navigation entry: the printable tree is linked from the console's Fulfilment page and
# shown inside the console as the decision-tree playbook.


@router.get("/windows/{window_id}", response_class=HTMLResponse)
def route_sheet_page(request: Request, window_id: IdPath, session: SessionDep,
                     _: FulfilmentReader) -> HTMLResponse:
    sheet = route_sheet(session, window_id=window_id)
    response = templates.TemplateResponse(request, "route_sheet.html", {
        "sheet": sheet, "map_svg": route_map_svg(sheet)})
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get("/decision-tree", response_class=HTMLResponse)
def decision_tree_page(session: SessionDep, settings: SettingsDep,
                       _: FulfilmentReader) -> HTMLResponse:
    response = HTMLResponse(tree_html(load_rules(session),
                                  title=f"Fulfilment decision tree — {settings.shop.name}"))
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- delivery-window templates ---------------------------------------------------------------

TEMPLATES_PATH = "/admin/fulfilment/templates"
Manager = Annotated[AdminViewer, staff_with("fulfilment:manage")]
Text = Annotated[str, Form(max_length=40)]


def _templates_page(request: Request, viewer: AdminViewer, services: Services, *,
                    error: FormError | None = None, values: dict[str, str] | None = None,
                    message: str = "") -> HTMLResponse:
    now = services.clock.now()
    with services.db.transaction() as session:
        hubs = list(session.scalars(
            select(Location).join(FulfilmentSite, FulfilmentSite.location_id == Location.id)
            .where(Location.kind == LocationKind.micro_hub).order_by(Location.code)))
        templates_by_hub = {loc.id: tpl for tpl, loc in list_templates(session)}
        rows = [{"hub": hub, "template": templates_by_hub.get(hub.id),
                 "horizon": window_horizon(session, hub.id, after=now)} for hub in hubs]
    return render(request, "window_templates.html", viewer,
                  status_code=error.status if error else 200, rows=rows, message=message,
                  values=values or {}, **(error.context() if error else {}))


@router.get("/templates", response_class=HTMLResponse)
def templates_page(request: Request, viewer: Manager, services: ServicesDep,
                   done_: Annotated[str, Query(alias="done", max_length=200)] = ""
                   ) -> HTMLResponse:
    return _templates_page(request, viewer, services, message=done_)


@router.post("/templates", response_class=HTMLResponse)
def save_template(request: Request, viewer: Manager, services: ServicesDep,
                  hub: Text = "", window_minutes: Text = "", capacity: Text = "",
                  cutoff_minutes: Text = "", first_start: Text = "", days_ahead: Text = "",
                  active: Text = "") -> Response:
    """Saves one hub's template and rolls its windows forward at once."""
    form = f"hub-{hub[:32]}"
    values = {"window_minutes": window_minutes, "capacity": capacity,
              "cutoff_minutes": cutoff_minutes, "first_start": first_start,
              "days_ahead": days_ahead, "active": active}
    try:
        start = None
        if first_start.strip():
            try:
                start = datetime.strptime(first_start.strip(), "%H:%M").time()
            except ValueError:
                raise FormError("enter a time such as 09:00, or leave it empty",
                                field="first_start", form=form) from None
        spec = TemplateSpec(
            window_minutes=parse_int(window_minutes, "window_minutes", low=15, high=720,
                                     form=form),
            capacity=parse_int(capacity, "capacity", low=1, high=10_000, form=form),
            cutoff_minutes=parse_int(cutoff_minutes, "cutoff_minutes", low=0, high=2880,
                                     form=form),
            first_start=start,
            days_ahead=parse_int(days_ahead, "days_ahead", low=1, high=60, form=form),
            active=bool(active))
        with services.db.transaction() as session:
            try:
                set_template(session, clock=services.clock, location_code=hub, spec=spec)
                created = roll_windows_forward(session, clock=services.clock).get(hub, 0)
            except DomainError as exc:
                raise from_domain(exc, form) from None
    except FormError as error:
        return _templates_page(request, viewer, services, error=error, values=values)
    return done(TEMPLATES_PATH, f"{hub}: template saved, {max(created, 0)} new window(s).",
                f"#hub-{hub}")


@router.post("/templates/roll", response_class=HTMLResponse)
def roll_now(viewer: Manager, services: ServicesDep) -> Response:
    with services.db.transaction() as session:
        created: dict[str, Any] = roll_windows_forward(session, clock=services.clock)
    total = sum(n for n in created.values() if n > 0)
    return done(TEMPLATES_PATH, f"{total} new window(s) created.")


# ------------------------------------------------------------------------ what it costs

PATH_WORDS = {"central": "Central warehouse", "hub-window": "Hub delivery window",
              "hub-collect": "Collection at a hub", "popup": "Pop-up counter"}


@router.get("/costs", response_class=HTMLResponse)
def costs_page(request: Request, viewer: Annotated[AdminViewer, staff_with("orders:read")],
               services: ServicesDep,
               weeks: Annotated[int, Query(ge=1, le=104)] = 8) -> HTMLResponse:
    """Fulfilment cost per order by path, location and ISO week: the figure the 90-day
    checklist asks a brand to audit (the same rows as ``dropline fulfilment costs``)."""
    from datetime import timedelta

    from dropline.fulfilment.stocking import cost_report

    now = services.clock.now()
    with services.db.transaction() as session:
        rows = cost_report(session, since=now - timedelta(weeks=weeks),
                           until=now + timedelta(seconds=1))
    by_path: dict[str, list[int]] = {}
    for row in rows:
        totals = by_path.setdefault(row.path, [0, 0])
        totals[0] += row.orders
        totals[1] += row.cost_amount
    summary = sorted(((path, orders, cost, cost / orders if orders else 0.0)
                      for path, (orders, cost) in by_path.items()), key=lambda r: -r[1])
    widest = max((per for *_, per in summary), default=0.0) or 1.0
    return render(request, "costs.html", viewer, rows=rows, weeks=weeks, words=PATH_WORDS,
                  summary=[(PATH_WORDS.get(p, p), n, c, per, round(300 * per / widest))
                           for p, n, c, per in summary],
                  currency=services.settings.shop.currency)
