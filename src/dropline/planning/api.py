"""Drop planning over JSON, read-only, behind the ``drops:manage`` scope (the people who
create drops are the ones who plan them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from dropline.planning import service
from dropline.web.deps import ClockDep, Principal, SessionDep, admin

router = APIRouter(prefix="/admin/planning", tags=["planning"])
Planner = Annotated[Principal, admin("drops:manage")]
Target = Annotated[float, Query(ge=0.05, le=0.99,
                                description="probability of selling out the cap aims for")]
Bootstrap = Annotated[int, Query(ge=0, le=200, description="bootstrap refits for intervals")]
Horizon = Annotated[int, Query(ge=7, le=365, description="days ahead to consider")]


@router.get("/plan", summary="Recommended next drop dates and caps, with their reasons")
def plan(session: SessionDep, clock: ClockDep, _: Planner, target: Target = 0.8,
         bootstrap: Bootstrap = 20, horizon_days: Horizon = 90) -> dict[str, Any]:
    result = service.plan_drops(session, clock=clock, bootstrap=bootstrap, target=target,
                                horizon_days=horizon_days)
    data = result.as_dict()
    if result.caps:
        day, cap_plan = result.caps[0]
        data["trade_off"] = {"date": day.isoformat(),
                             "options": [o.as_dict() for o in cap_plan.options]}
    return data


@router.get("/attention", summary="Attention cycle per segment, with 90% intervals")
def attention(session: SessionDep, clock: ClockDep, _: Planner,
              bootstrap: Bootstrap = 20) -> dict[str, Any]:
    history = service.load_history(session, now=clock.now())
    return {name: model.as_dict()
            for name, model in service.fit_models(history, bootstrap=bootstrap).items()}


@router.get("/sustainability",
            summary="Per drop: units left over, made to order, sell-through time, totals")
def sustainability(session: SessionDep, clock: ClockDep, _: Planner) -> dict[str, Any]:
    rows = service.sustainability(session, clock=clock)
    return {"drops": [r.as_dict() for r in rows],
            "totals": {"left_over": rows[-1].total_left_over if rows else 0,
                       "made_to_order": rows[-1].total_made_to_order if rows else 0,
                       "sold": rows[-1].total_sold if rows else 0}}
