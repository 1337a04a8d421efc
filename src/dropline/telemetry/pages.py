"""The console's telemetry page: the cohort heatmap, repeat-purchase tracking, LTV curves by
cut and the decisions, drawn as inline SVG on the server (``charts``), behind the console
sign-in (``web.admin.AdminPageUser``).

``telemetry_context`` gathers everything the page shows from one read of the shop; the
template only lays it out, so tests can render the page without a browser or a login."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from dropline.telemetry import service
from dropline.telemetry.charts import Series, bar_chart_svg, heatmap_svg, line_chart_svg
from dropline.telemetry.cohorts import CUT_LABELS, cohort_curves, cohort_table, value_by
from dropline.telemetry.decisions import (
    DEFAULT_GROSS_MARGIN,
    DEFAULT_TARGET_RATIO,
    cac_ceilings,
    delivery_subsidy_decision,
)
from dropline.telemetry.shop_ltv import estimate_shop_ltv
from dropline.web.admin import AdminViewer, staff_with
from dropline.web.deps import ClockDep, SessionDep, SettingsDep
from dropline.web.navigation import NavItem
from dropline.web.templating import money, templates

PATH = "/admin/telemetry"
router = APIRouter(include_in_schema=False)
NAV_ITEMS = (NavItem("Telemetry", PATH, "telemetry:read"),)

PageCut = Literal["source", "family", "fulfilment", "drop_type", "subsidised", "campaign"]


def _short_money(currency: str) -> Any:
    """Whole major units for chart labels (cells are narrow): 12345 -> "£123"."""
    return lambda value: money(int(round(value / 100)) * 100, currency).rsplit(".", 1)[0]


def telemetry_context(session: Session, *, as_of: dt.datetime, by: str, currency: str,
                      unit_cost: int | None = None, family: str | None = None,
                      subsidy_cost: int = 395) -> dict[str, Any]:
    log, customers = service.load_customers(session, as_of=as_of, currency=currency)
    short = _short_money(currency)
    table = cohort_table(customers, period="month", currency=currency)
    by_cut = cohort_table(customers, period="month", by=[by], currency=currency)
    heat = cohort_curves(customers, period="month", step_days=30, steps=12, currency=currency)
    repeat = cohort_curves(customers, period="month", step_days=7, steps=26, currency=currency)
    heatmap = heatmap_svg(
        [f"{r.period} · {r.customers}" for r in heat.revenue], [f"{a} d" for a in heat.ages],
        [r.values for r in heat.revenue],
        title="Cumulative net revenue per customer, by days since first purchase",
        fmt=short)
    recent = repeat.repeat[-8:]
    repeat_svg = line_chart_svg(
        [a / 7 for a in repeat.ages], [Series(r.period, [None if v is None else v * 100
                                                         for v in r.values]) for r in recent],
        title="Customers who ordered again (%), by weeks since first purchase",
        x_label="weeks since first purchase", y_label="% repeated",
        fmt=lambda v: f"{v:.0f}%")
    ltv = estimate_shop_ltv(log, customers, calibration_end=as_of.date(), by=[by])
    ltv_svg = ""
    if ltv.cuts:
        ltv_svg = line_chart_svg(
            ltv.curve_weeks,
            [Series(f"{'/'.join(c.cut.values())} ({c.customers})", c.curve) for c in ltv.cuts]
            + [Series("new customer", ltv.new_customer_curve)],
            title=f"Expected revenue per customer from now, by {CUT_LABELS[by]}",
            x_label="weeks ahead", y_label=currency, fmt=short)
    tagged = set(log.drop_type.tolist()) - {""}
    ceilings = cac_ceilings(value_by(customers, "drop_type", days=90), tagged=tagged)
    ceilings_svg = bar_chart_svg([(c.drop_type, c.ceiling) for c in ceilings],
                                 title="CAC ceiling per drop type",
                                 fmt=lambda v: money(int(v), currency))
    subsidy = delivery_subsidy_decision(service.subsidy_comparison(customers),
                                        cost_per_subsidy=subsidy_cost)
    cash = cash_svg = None
    if unit_cost is not None:
        cash = service.production_forecast(
            session, as_of=as_of, family=family or None, unit_cost=unit_cost, unit_price=None,
            lead_time_weeks=3, member_uptake=0.3, waitlist_conversion=0.5, currency=currency)
        cash_svg = line_chart_svg(
            [w.week for w in cash.weeks], [Series("cumulative cash", [
                w.cumulative for w in cash.weeks])],
            title="Cumulative cash of the next production run", x_label="week",
            y_label=currency, fmt=short)
    return {
        "as_of": as_of, "currency": currency, "by": by, "cut_labels": CUT_LABELS,
        "table": table, "by_cut": by_cut, "heatmap_svg": heatmap, "repeat_svg": repeat_svg,
        "ltv": ltv, "ltv_svg": ltv_svg, "ceilings": ceilings, "ceilings_svg": ceilings_svg,
        "gross_margin": DEFAULT_GROSS_MARGIN, "target_ratio": DEFAULT_TARGET_RATIO,
        "subsidy": subsidy, "subsidy_cost": subsidy_cost, "cash": cash, "cash_svg": cash_svg,
        "unit_cost": unit_cost, "family": family or "",
    }


def render_telemetry_html(context: dict[str, Any]) -> str:
    """The page's body without the console chrome (for tests and for embedding)."""
    return templates.env.get_template("telemetry_body.html").render(context)


@router.get(PATH, response_class=HTMLResponse)
def telemetry_page(request: Request,
                   viewer: Annotated[AdminViewer, staff_with("telemetry:read")],
                   session: SessionDep,
                   clock: ClockDep, settings: SettingsDep, by: PageCut = "source",
                   unit_cost: Annotated[int | None, Query(ge=0, le=10**8)] = None,
                   family: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    context = telemetry_context(session, as_of=clock.now(), by=by, currency=settings.shop.currency,
                                unit_cost=unit_cost, family=family)
    response = templates.TemplateResponse(request, "telemetry.html", {
        "nav": request.app.state.navigation, "viewer": viewer, "current": request.url.path,
        "shop_name": settings.shop.name, **context})
    response.headers["Cache-Control"] = "private, no-store"
    return response
