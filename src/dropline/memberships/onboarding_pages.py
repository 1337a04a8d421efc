"""The console's onboarding page: each flow's measured effect on retention against its
holdout (a chart of the difference and its 90 % interval), and the flows edited in place: one
form per flow (steps as rows: key, subject, text, day or event, completes-on, channel), a blank
form for a new flow, deletion behind a confirmation. Every save goes through
``onboarding.set_flows`` with the whole set, so the rules are the CLI's and the API's; a
refused flow is shown again as typed, with the reason beside it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from dropline.errors import DomainError, InvalidInput
from dropline.memberships import onboarding
from dropline.memberships.models import MembershipTier
from dropline.memberships.onboarding_rules import Effect, flows_as_config
from dropline.memberships.rules import ONBOARDING_CHANNELS, Segment
from dropline.web.admin import AdminViewer, render, staff_with
from dropline.web.deps import ServicesDep

router = APIRouter(include_in_schema=False)
PATH = "/admin/memberships/onboarding"
MAX_STEPS = 20
Reader = Annotated[AdminViewer, staff_with("memberships:read")]
Manager = Annotated[AdminViewer, staff_with("memberships:manage")]


def _bar(effect: Effect) -> dict[str, Any] | None:
    """Where the difference and its interval sit on a -100..+100-point axis (0..240 px)."""
    if effect.difference is None or effect.low is None or effect.high is None:
        return None

    def x(value: float) -> float:
        return round(120 + 120 * max(-1.0, min(1.0, value)), 1)

    return {"low": x(effect.low), "high": x(effect.high), "mid": x(effect.difference),
            "label": f"{effect.difference * 100:+.0f} pts ({effect.low * 100:+.0f} to "
                     f"{effect.high * 100:+.0f})"}


def _page(request: Request, services: ServicesDep, viewer: AdminViewer, *,
          error: str = "", failed: dict[str, Any] | None = None, saved: str = "",
          status_code: int = 200) -> Response:
    with services.db.transaction() as session:
        flows = flows_as_config(onboarding.get_flows(session))
        effects = onboarding.onboarding_effect(session, clock=services.clock)
        tiers = list(session.scalars(select(MembershipTier.slug).order_by(MembershipTier.slug)))
    forms = [_as_typed(f) for f in flows] + [
        {"original": "", "name": "", "tier": None, "segment": None, "holdout_percent": "0",
         "steps": []}]
    if failed is not None:  # the refused form again, as typed
        forms = [failed if form["original"] == failed["original"] else form for form in forms]
    return render(request, "onboarding.html", viewer, status_code=status_code, forms=forms,
                  effects=[(e, {d: (r, _bar(r)) for d, r in e.retention.items()})
                           for e in effects],
                  tiers=tiers, segments=[s.value for s in Segment],
                  channels=ONBOARDING_CHANNELS, error=error, failed=failed, saved=saved,
                  may_edit=viewer.may("memberships:manage"), max_steps=MAX_STEPS)


def _as_typed(flow: dict[str, Any]) -> dict[str, Any]:
    """A stored flow in the form's own shape (what ``_typed_flow`` reads back)."""
    return {"original": flow["name"], "name": flow["name"], "tier": flow["tier"],
            "segment": flow["segment"], "holdout_percent": f"{flow['holdout_share'] * 100:g}",
            "steps": [{"key": s["key"], "subject": s["subject"], "text": s["text"],
                       "when": str(s["day"]) if s["day"] is not None else s["event"],
                       "completes_on": s["completes_on"] or "", "channel": s["channel"]}
                      for s in flow["steps"]]}


@router.get(PATH, response_class=HTMLResponse)
def onboarding_page(request: Request, services: ServicesDep, viewer: Reader,
                    saved: str = "") -> Response:
    return _page(request, services, viewer, saved=saved[:40])


def _typed_flow(form: Any) -> dict[str, Any]:
    """The flow as the form sent it (strings kept as typed, for showing it again)."""
    steps = []
    for i in range(MAX_STEPS + 1):
        key = str(form.get(f"step-{i}-key", "")).strip()
        if not key or form.get(f"step-{i}-remove"):
            continue
        when = str(form.get(f"step-{i}-when", "")).strip()
        steps.append({"key": key[:40], "subject": str(form.get(f"step-{i}-subject", ""))[:200],
                      "text": str(form.get(f"step-{i}-text", ""))[:4000],
                      "when": when[:64],
                      "completes_on": str(form.get(f"step-{i}-completes_on", "")).strip()[:64],
                      "channel": str(form.get(f"step-{i}-channel", "email"))[:16]})
    return {"original": str(form.get("original", ""))[:40],
            "name": str(form.get("name", "")).strip()[:40],
            "tier": str(form.get("tier", "")).strip()[:64] or None,
            "segment": str(form.get("segment", "")).strip()[:16] or None,
            "holdout_percent": str(form.get("holdout_percent", "0")).strip()[:8],
            "steps": steps}


def _flow_config(typed: dict[str, Any]) -> dict[str, Any]:
    try:
        share = float(typed["holdout_percent"] or 0) / 100
    except ValueError:
        raise InvalidInput("the holdout is a percentage, 0 to 50", field="holdout") from None
    steps = []
    for step in typed["steps"]:
        when = step["when"]
        day = int(when) if when.isdigit() else None
        if not when:
            raise InvalidInput(f"step {step['key']!r}: say when: a day (0 to 30) or an event "
                               "such as order.paid", field="steps")
        steps.append({"key": step["key"], "subject": step["subject"], "text": step["text"],
                      "day": day, "event": None if day is not None else when,
                      "completes_on": step["completes_on"] or None,
                      "channel": step["channel"]})
    return {"name": typed["name"], "tier": typed["tier"], "segment": typed["segment"],
            "holdout_share": share, "steps": steps}


@router.post(PATH, response_class=HTMLResponse)
async def save_flow(request: Request, services: ServicesDep, viewer: Manager) -> Response:
    typed = _typed_flow(await request.form())
    try:
        flow = _flow_config(typed)
        with services.db.transaction() as session:
            current = flows_as_config(onboarding.get_flows(session))
            others = [f for f in current if f["name"] != typed["original"]]
            onboarding.set_flows(session, clock=services.clock, flows=[*others, flow])
    except DomainError as exc:
        return _page(request, services, viewer, error=exc.detail, failed=typed,
                     status_code=exc.status)
    return RedirectResponse(f"{PATH}?saved={typed['name']}", status_code=303)


@router.post(f"{PATH}/delete", response_class=HTMLResponse)
async def delete_flow(request: Request, services: ServicesDep, viewer: Manager) -> Response:
    form = await request.form()
    name = str(form.get("name", ""))[:40]
    if form.get("confirm") != "yes":
        return _page(request, services, viewer, status_code=422,
                     error=f"tick “Delete {name}” to confirm: its members keep their "
                           "assignment, new members get the next matching flow")
    with services.db.transaction() as session:
        current = flows_as_config(onboarding.get_flows(session))
        onboarding.set_flows(session, clock=services.clock,
                             flows=[f for f in current if f["name"] != name])
    return RedirectResponse(f"{PATH}?saved=deleted", status_code=303)
