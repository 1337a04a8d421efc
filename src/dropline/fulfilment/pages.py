"""Admin pages for fulfilment, rendered on the server: a window's route sheet with its route
map (inline SVG, no CDN), printable for the drivers, and the decision tree.

Both are console pages: an admin signed in to /admin (cookie session)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dropline.fulfilment.decision_tree import tree_html
from dropline.fulfilment.planning import route_sheet
from dropline.fulfilment.routemap import route_map_svg
from dropline.fulfilment.service import load_rules
from dropline.schemas import IdPath
from dropline.web.admin import AdminViewer, staff_with
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
