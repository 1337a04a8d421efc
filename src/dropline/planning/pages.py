"""The console's planning page: the attention series with its fitted cycle, the candidate
dates and why the top one wins, the cap trade-off (P(sell out) against units left over), and
the sustainability figures. Charts are server-side SVG (``telemetry.charts``).

``planning_context`` gathers everything from one ``plan_drops``; the template lays it out,
so tests render the page without a browser."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import DomainError
from dropline.planning import service, signals
from dropline.planning.model import series_curve
from dropline.telemetry.charts import Series, line_chart_svg
from dropline.web.admin import AdminViewer, render, staff_with
from dropline.web.deps import ClockDep, SessionDep
from dropline.web.navigation import NavItem
from dropline.web.templating import templates

PATH = "/admin/planning"
CHART_DAYS = 180
router = APIRouter(include_in_schema=False)
NAV_ITEMS = (NavItem("Planning", PATH, "planning:read"),)


def _attention_svg(plan: service.DropPlan) -> str:
    history = plan.history
    series = history.series()
    model = plan.models[signals.ALL]
    days = history.drop_indices()
    fitted = series_curve(model.fit, days, len(series.counts)) if days else \
        [model.fit.baseline] * len(series.counts)
    first = max(len(series.counts) - CHART_DAYS, 0)
    xs = list(range(first, len(series.counts)))

    def label(x: float) -> str:
        day = series.start + timedelta(days=int(x))
        return day.strftime("%d %b") if (int(x) - first) % 30 == 0 else ""

    return line_chart_svg(
        xs, [Series("touches a day", [float(series.counts[i]) for i in xs]),
             Series("fitted cycle", [round(float(fitted[i]), 1) for i in xs])],
        title=f"Attention, last {len(xs)} days: observed and fitted", x_label="day",
        y_label="touches", x_fmt=label)


def _trade_off_svgs(plan: service.DropPlan) -> tuple[str, str]:
    if not plan.caps:
        return "", ""
    day, cap_plan = plan.caps[0]
    options = cap_plan.options
    xs = [o.cap for o in options]
    step = max(len(xs) // 10, 1)

    def every(x: float) -> str:
        return f"{x:.0f}" if int(x) % step == 0 else ""

    p_svg = line_chart_svg(
        xs, [Series("P(sell out) %", [o.p_sell_out * 100 for o in options])],
        title=f"Chance of selling out by cap ({day.isoformat()})", x_label="cap (units)",
        y_label="%", fmt=lambda v: f"{v:.0f}%", x_fmt=every)
    units_svg = line_chart_svg(
        xs, [Series("left over", [o.expected_left_over for o in options]),
             Series("made to order", [o.expected_made_to_order for o in options])],
        title="Expected units left over vs made to order, by cap", x_label="cap (units)",
        y_label="units", fmt=lambda v: f"{v:.0f}", x_fmt=every)
    return p_svg, units_svg


def planning_context(session: Session, *, clock: Clock, bootstrap: int = 20) -> dict[str, Any]:
    plan = service.plan_drops(session, clock=clock, bootstrap=bootstrap)
    p_svg, units_svg = _trade_off_svgs(plan)
    return {"plan": plan, "data": plan.as_dict(), "attention_svg": _attention_svg(plan),
            "p_svg": p_svg, "units_svg": units_svg}


def render_planning_html(context: dict[str, Any]) -> str:
    return templates.env.get_template("planning_body.html").render(context)


@router.get(PATH, response_class=HTMLResponse)
def planning_page(request: Request,
                  viewer: Annotated[AdminViewer, staff_with("planning:read")], session: SessionDep,
                  clock: ClockDep) -> HTMLResponse:
    try:
        context = planning_context(session, clock=clock)
    except DomainError as exc:  # e.g. no drop has ended yet: say so on the page
        return render(request, "planning.html", viewer, empty=exc.detail)
    return render(request, "planning.html", viewer, **context)
