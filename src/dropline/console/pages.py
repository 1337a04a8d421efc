"""The console's cross-domain pages: drops (schedule, live sell-through with a small JSON
poll, post-drop report), the fulfilment network (map, today's windows and their load, route
sheets), the playbooks and the 90-day checklist; plus a "not built yet" page for an area whose
module is missing, so the navigation never leads to fake numbers.

Every page declares its scope (``web.admin.staff_with``) and is rendered with
``web.admin.render`` into ``admin/base.html``; charts are SVG drawn on the server.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from markupsafe import Markup

from dropline.console import checklist as checklist_module
from dropline.console import figures, network, playbooks, versions
from dropline.console.document import to_html, to_html_fragment, to_markdown
from dropline.drops import service as drops
from dropline.errors import NotFound
from dropline.planning.drop_report import drop_report
from dropline.schemas import IdPath
from dropline.web.admin import AdminViewer, AnyStaff, render, staff_with
from dropline.web.deps import ClockDep, SessionDep, SettingsDep
from dropline.web.navigation import NavItem

router = APIRouter(include_in_schema=False)
DropsReader = Annotated[AdminViewer, staff_with("drops:read")]
FulfilmentReader = Annotated[AdminViewer, staff_with("fulfilment:read")]
GuidesReader = Annotated[AdminViewer, staff_with("guides:read")]

PlaybookName = Literal["cohort-map", "drop-runbook", "decision-tree"]
# Areas owned by other modules: if the module has no console page, ours says so.
OPTIONAL_AREAS = {"risk": ("Risk", "/admin/risk", "the review queue and the audit log"),
                  "planning": ("Planning", "/admin/planning",
                               "drop cadence and cap planning from demand signals")}


def _missing(area: str) -> bool:
    return not figures.module_built(f"{area}.pages")


# The console's entries, and a placeholder for each optional area whose module is not built.
NAV_ITEMS = (NavItem("Drops", "/admin/drops", "drops:read"),
             NavItem("Fulfilment", "/admin/fulfilment", "fulfilment:read"),
             NavItem("Playbooks", "/admin/playbooks", "guides:read"),
             NavItem("90-day checklist", "/admin/checklist", "guides:read"),
             *(NavItem(label, path) for area, (label, path, _) in OPTIONAL_AREAS.items()
               if _missing(area)))


# ------------------------------------------------------------------------------------ drops


@router.get("/admin/drops", response_class=HTMLResponse)
def drops_page(request: Request, viewer: DropsReader, session: SessionDep,
               clock: ClockDep) -> HTMLResponse:
    rows = figures.drop_rows(session, clock=clock)
    live = [r for r in rows if r.state in ("live", "early-access", "sold-out")
            and r.ends_at > clock.now()]
    return render(request, "console/drops.html", viewer, rows=rows, live=live,
                  now=clock.now())


@router.get("/admin/drops/{drop_id}", response_class=HTMLResponse)
def drop_page(request: Request, drop_id: IdPath, viewer: DropsReader, session: SessionDep,
              clock: ClockDep) -> HTMLResponse:
    drop = drops.get_drop(session, drop_id)
    row = figures.drop_row(session, clock=clock, drop=drop)
    report = drop_report(session, clock=clock, drop=drop)
    until = min(clock.now(), drop.ends_at) if clock.now() > report.opened_at else drop.ends_at
    if report.time_to_sell_out_seconds:  # zoom to the selling: a sell-out in an hour of 48
        until = min(until, report.opened_at + timedelta(
            seconds=max(report.time_to_sell_out_seconds * 1.25, 3600)))
    chart = network.sell_through_svg(row, network.sales_times(session, drop.id),
                                     opened_at=report.opened_at, until=until)
    return render(request, "console/drop.html", viewer, row=row,
                  report=report, chart=Markup(chart))


@router.get("/admin/drops/{drop_id}/live.json")
def drop_live(drop_id: IdPath, _: DropsReader, session: SessionDep,
              clock: ClockDep) -> JSONResponse:
    """What the drops page polls every few seconds while a drop is open."""
    row = figures.drop_row(session, clock=clock, drop=drops.get_drop(session, drop_id))
    return JSONResponse({"id": row.id, "state": row.state, "cap": row.cap, "sold": row.sold,
                         "held": row.held, "remaining": row.remaining,
                         "waiting_room": row.waiting,
                         "sell_through": round(row.sell_through, 4),
                         "as_of": clock.now().isoformat()},
                        headers={"Cache-Control": "private, no-store"})


# ------------------------------------------------------------------------------ fulfilment


@router.get("/admin/fulfilment", response_class=HTMLResponse)
def fulfilment_page(request: Request, viewer: FulfilmentReader, session: SessionDep,
                    clock: ClockDep) -> HTMLResponse:
    today = figures.delivery_day(session, day=figures.local_day(clock.now()))
    tomorrow = figures.delivery_day(session,
                                    day=figures.local_day(clock.now() + timedelta(days=1)))
    return render(request, "console/fulfilment.html", viewer, today=today,
                  tomorrow=tomorrow,
                  map_svg=Markup(network.network_map_svg(session, today.stops)))


# ------------------------------------------------------------------------------- playbooks


@router.get("/admin/playbooks", response_class=HTMLResponse)
def playbooks_page(request: Request, viewer: GuidesReader) -> HTMLResponse:
    return render(request, "console/playbooks.html", viewer,
                  playbooks=playbooks.PLAYBOOKS)


@router.get("/admin/playbooks/{name}", response_class=HTMLResponse)
def playbook_page(request: Request, name: PlaybookName, viewer: GuidesReader,
                  session: SessionDep, clock: ClockDep, settings: SettingsDep,
                  format: Literal["page", "md", "html"] = "page") -> Response:
    try:
        doc = playbooks.build(name, session, clock=clock, currency=settings.shop.currency)
    except NotFound as exc:
        return render(request, "console/not_built.html", viewer, status_code=200,
                      title=playbooks.PLAYBOOKS[name], why=exc.detail)
    headers = {"Cache-Control": "private, no-store"}
    if format == "md":
        return PlainTextResponse(to_markdown(doc), media_type="text/markdown", headers=headers)
    if format == "html":
        return HTMLResponse(to_html(doc, shop_name=settings.shop.name), headers=headers)
    changes = versions.changes_since_last_week(session, name=name, current=to_markdown(doc),
                                               clock=clock)
    return render(request, "console/playbook.html", viewer, doc=doc,
                  body=Markup(to_html_fragment(doc)), name=name, changes=changes)


# ------------------------------------------------------------------------------- checklist


@router.get("/admin/checklist", response_class=HTMLResponse)
def checklist_page(request: Request, viewer: GuidesReader, session: SessionDep,
                   clock: ClockDep, settings: SettingsDep) -> HTMLResponse:
    items = checklist_module.checklist(session, clock=clock, currency=settings.shop.currency)
    return render(request, "console/checklist.html", viewer, items=items,
                  done=sum(i.done for i in items))


# ------------------------------------------------------------------ areas not built (yet)


def _not_built_page(area: str) -> Any:
    label, _, what = OPTIONAL_AREAS[area]

    def page(request: Request, viewer: AnyStaff) -> HTMLResponse:
        return render(request, "console/not_built.html", viewer, title=label,
                      why=f"The {label.lower()} module ({what}) is not built yet, so this "
                          "page shows no numbers.")
    return page


for area, (_, path, _) in OPTIONAL_AREAS.items():
    if _missing(area):
        router.add_api_route(path, _not_built_page(area), methods=["GET"],
                             response_class=HTMLResponse)
