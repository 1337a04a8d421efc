"""Telemetry over JSON, read-only, behind the ``telemetry:read`` scope: cohort tables and
curves, the shop's LTV by cut, and the decisions built on them. Every figure that is not yet
fully observed is ``null`` with a note saying why, never a partial number."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from dropline.errors import InvalidInput
from dropline.schemas import Day, Instant
from dropline.telemetry import service
from dropline.telemetry.decisions import DEFAULT_GROSS_MARGIN, DEFAULT_TARGET_RATIO
from dropline.telemetry.report import plain
from dropline.telemetry.shop_ltv import estimate_shop_ltv
from dropline.web.deps import ClockDep, Principal, SessionDep, SettingsDep, admin

router = APIRouter(prefix="/admin/telemetry", tags=["telemetry"])
Reader = Annotated[Principal, admin("telemetry:read")]
CutName = Literal["source", "campaign", "family", "fulfilment", "drop_type", "subsidised"]
By = Annotated[list[CutName], Query(max_length=3, description=(
    "cut by any of these properties of the customer's first purchase (repeat the parameter)"))]
AsOf = Annotated[Instant | None, Query(description="the moment to look from (default: now)")]
Margin = Annotated[float, Query(ge=0, le=1, description="gross margin as a share")]
# The LTV curve is drawn in 4-week steps (estimate_shop_ltv's curve_step_weeks): a shorter
# horizon has no point on it.
MIN_HORIZON_WEEKS = 4
# Closer to 1 and 0.5 + confidence / 2 rounds to 1.0 in floating point, where the normal
# quantile is infinite; an interval wider than ~5 standard errors says nothing more anyway.
MAX_CONFIDENCE = 0.999999


def _as_of(value: dt.datetime | None, clock: Any) -> dt.datetime:
    return (value or clock.now()).astimezone(dt.UTC)


@router.get("/cohorts", summary="Cohort table: 30/60/90-day net revenue and repeat rate")
def cohorts(session: SessionDep, clock: ClockDep, settings: SettingsDep, _: Reader,
            by: By = [],  # noqa: B006 - FastAPI reads the default, never mutates it
            period: Literal["month", "week"] = "month", as_of: AsOf = None) -> dict[str, Any]:
    table = service.cohort_report(session, as_of=_as_of(as_of, clock), period=period, by=by,
                                  currency=settings.shop.currency)
    return plain(table)


@router.get("/cohorts/curves",
            summary="Cumulative revenue per customer and repeat share by age, per cohort")
def cohort_curves(session: SessionDep, clock: ClockDep, settings: SettingsDep, _: Reader,
                  by: By = [],  # noqa: B006
                  period: Literal["month", "week"] = "month",
                  step_days: Annotated[int, Query(ge=1, le=365)] = 30,
                  steps: Annotated[int, Query(ge=1, le=60)] = 12,
                  as_of: AsOf = None) -> dict[str, Any]:
    return plain(service.curves_report(session, as_of=_as_of(as_of, clock), period=period,
                                       by=by, step_days=step_days, steps=steps,
                                       currency=settings.shop.currency))


@router.get("/ltv", summary="BG/NBD + Gamma-Gamma LTV of the shop's customers, by cut")
def ltv(session: SessionDep, clock: ClockDep, settings: SettingsDep, _: Reader,
        by: By = [],  # noqa: B006
        calibration_end: Annotated[Day | None, Query(
            description="fit on purchases up to this day; later ones check the forecast")] = None,
        horizon_weeks: Annotated[float, Query(ge=MIN_HORIZON_WEEKS, le=520, description=(
            "weeks ahead; at least one step of the value curve"))] = 52,
        discount_rate: Annotated[float, Query(ge=0, le=1)] = 0.10,
        as_of: AsOf = None) -> dict[str, Any]:
    now = _as_of(as_of, clock)
    cal_end = calibration_end or now.date()
    if cal_end > now.date():
        raise InvalidInput("calibration_end must not be after as_of", field="calibration_end")
    log, customers = service.load_customers(session, as_of=now, currency=settings.shop.currency)
    return plain(estimate_shop_ltv(log, customers, calibration_end=cal_end, by=by,
                                   horizon_weeks=horizon_weeks,
                                   annual_discount_rate=discount_rate))


@router.get("/decisions/cac-ceilings",
            summary="CAC ceiling per drop type: 90-day LTV x gross margin / target ratio")
def cac_ceilings(session: SessionDep, clock: ClockDep, settings: SettingsDep, _: Reader,
                 gross_margin: Margin = DEFAULT_GROSS_MARGIN,
                 target_ratio: Annotated[float, Query(gt=0, le=100)] = DEFAULT_TARGET_RATIO,
                 as_of: AsOf = None) -> dict[str, Any]:
    rows = service.cac_report(session, as_of=_as_of(as_of, clock), gross_margin=gross_margin,
                              target_ratio=target_ratio, currency=settings.shop.currency)
    return {"currency": settings.shop.currency, "gross_margin": gross_margin,
            "target_ratio": target_ratio, "ceilings": plain(rows),
            "note": "90-day LTV is net revenue per customer over the customers whose first "
                    "90 days have passed; 'pending' customers are too recent to count"}


@router.get("/decisions/delivery-subsidy",
            summary="Should first deliveries be subsidised? Effect on retention and value")
def delivery_subsidy(session: SessionDep, clock: ClockDep, settings: SettingsDep, _: Reader,
                     cost_per_subsidy: Annotated[int, Query(ge=0, le=10**7, description=(
                         "what one subsidised first delivery costs, minor units"))] = 395,
                     gross_margin: Margin = DEFAULT_GROSS_MARGIN,
                     confidence: Annotated[float, Query(gt=0.5, le=MAX_CONFIDENCE)] = 0.95,
                     as_of: AsOf = None) -> dict[str, Any]:
    decision = service.subsidy_report(
        session, as_of=_as_of(as_of, clock), cost_per_subsidy=cost_per_subsidy,
        gross_margin=gross_margin, confidence=confidence, currency=settings.shop.currency)
    return {"currency": settings.shop.currency, **plain(decision)}


@router.get("/decisions/cash-forecast",
            summary="Weekly cash out and in for the next production run")
def production_cash(
    session: SessionDep, clock: ClockDep, settings: SettingsDep, _: Reader,
    unit_cost: Annotated[int, Query(ge=0, le=10**8, description="minor units per unit")],
    family: Annotated[str | None, Query(max_length=64)] = None,
    unit_price: Annotated[int | None, Query(ge=0, le=10**8, description=(
        "minor units; default: the average price sold at recently"))] = None,
    lead_time_weeks: Annotated[int, Query(ge=0, le=52)] = 3,
    member_uptake: Annotated[float, Query(ge=0, le=100)] = 0.3,
    waitlist_conversion: Annotated[float, Query(ge=0, le=100)] = 0.5,
    deposit_share: Annotated[float, Query(ge=0, le=1)] = 0.5,
    safety_share: Annotated[float, Query(ge=0, le=5)] = 0.0,
    refund_rate: Annotated[float, Query(ge=0, le=1)] = 0.0,
    as_of: AsOf = None,
) -> dict[str, Any]:
    forecast = service.production_forecast(
        session, as_of=_as_of(as_of, clock), family=family, unit_cost=unit_cost,
        unit_price=unit_price, lead_time_weeks=lead_time_weeks, member_uptake=member_uptake,
        waitlist_conversion=waitlist_conversion, deposit_share=deposit_share,
        safety_share=safety_share, refund_rate=refund_rate, currency=settings.shop.currency)
    return plain(forecast)

