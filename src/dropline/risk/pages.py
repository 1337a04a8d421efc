"""Server-rendered risk pages: the public returns policy (generated from the settings), the
customer's "return an item" page, and the console's review queue and audit log.

Console forms are plain POSTs: the admin cookie is ``SameSite=Strict`` (no cross-site POST
carries it), as for every console page. Each POST calls the same services as the JSON API,
then redirects (303) with a one-line message."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from dropline.catalog.models import ConditionGrade, Product, Variant
from dropline.catalog.rules import DEFAULT_DISCLOSURES, GRADE_LABELS
from dropline.errors import DomainError, InvalidInput, NotFound
from dropline.orders import service as orders
from dropline.risk import audit, card_testing, config, flows, queue, returns
from dropline.risk.models import ReturnOutcome, ReturnPolicy, ReturnStatus
from dropline.schemas import IdForm, IdPath
from dropline.telemetry.charts import bar_chart_svg
from dropline.web.admin import AdminViewer, staff_with
from dropline.web.admin import render as render_console
from dropline.web.deps import OptionalCustomer, ServicesDep, SessionDep
from dropline.web.navigation import NavItem
from dropline.web.templating import templates

router = APIRouter(include_in_schema=False)
QUEUE_PATH, AUDIT_PATH = "/admin/risk", "/admin/audit"
NAV_ITEMS = (NavItem("Risk", QUEUE_PATH, "risk:review"),
             NavItem("Audit", AUDIT_PATH, "audit:read"))
RiskReviewer = Annotated[AdminViewer, staff_with("risk:review")]
AuditReader = Annotated[AdminViewer, staff_with("audit:read")]
Short = Annotated[str, Form(max_length=500)]


# --- public: the returns policy ----------------------------------------------------------

GRADE_NOTES = {
    ConditionGrade.new: "Unopened or unused, exactly as made.",
    **{g: DEFAULT_DISCLOSURES.get(g, "") for g in ConditionGrade if g is not ConditionGrade.new},
}


def policy_context(session: Any) -> dict[str, Any]:
    cfg = config.load_config(session)
    final = sorted({name for (name,) in session.execute(
        select(Product.name).join(ReturnPolicy, ReturnPolicy.product_id == Product.id)
        .where(ReturnPolicy.final_sale.is_(True)))} | {name for (name,) in session.execute(
            select(Product.name).join(Variant, Variant.product_id == Product.id)
            .where(Variant.final_sale.is_(True)))})
    windows = [(name, days) for name, days in session.execute(
        select(Product.name, ReturnPolicy.window_days).join(
            ReturnPolicy, ReturnPolicy.product_id == Product.id)
        .where(ReturnPolicy.window_days.is_not(None), ReturnPolicy.final_sale.is_(False))
        .order_by(Product.name)) if days != cfg.return_window_days]
    return {"window_days": cfg.return_window_days,
            "fee_percent": f"{cfg.restocking_fee_bps / 100:g}",
            "exempt": [config.REASONS.get(r, r) for r in cfg.fee_exempt_reasons],
            "grades": [(GRADE_LABELS[g], GRADE_NOTES.get(g, "")) for g in ConditionGrade],
            "final_sale": final, "special_windows": windows, "reasons": config.REASONS}


@router.get("/returns-policy", response_class=HTMLResponse)
def returns_policy(request: Request, session: SessionDep, services: ServicesDep) -> HTMLResponse:
    response = templates.TemplateResponse(request, "risk/returns_policy.html", {
        "shop_name": services.settings.shop.name, **policy_context(session)})
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# --- customer: return an item ------------------------------------------------------------

def _return_page(request: Request, services: ServicesDep, customer_id: int, order_id: int, *,
                 message: str = "", error: str = "", status_code: int = 200) -> Response:
    with services.db.transaction() as session:
        try:
            detail = orders.order_detail(session, orders.get_order(session, order_id,
                                                                   customer_id=customer_id))
        except NotFound:
            return templates.TemplateResponse(request, "not_found.html", {
                "shop_name": services.settings.shop.name, "what": "order"}, status_code=404)
        mine = [r for r in returns.list_returns(session, customer_id=customer_id, limit=200)
                if r.order_id == order_id]
        cfg = config.load_config(session)
    response = templates.TemplateResponse(request, "risk/return_request.html", {
        "shop_name": services.settings.shop.name, "detail": detail, "returns": mine,
        "reasons": config.REASONS, "window_days": cfg.return_window_days,
        "message": message, "error": error, "form_key": uuid.uuid4().hex},
        status_code=status_code)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get("/orders/{order_id}/return", response_class=HTMLResponse)
def return_form(order_id: IdPath, request: Request, services: ServicesDep,
                customer: OptionalCustomer,
                done: Annotated[int, Query(ge=0, le=2**53)] = 0) -> Response:
    if customer is None:
        return RedirectResponse(f"/sign-in?next={quote(f'/orders/{order_id}/return')}",
                                status_code=303)
    message = f"Return #{done} requested: send the item back and we will be in touch." \
        if done else ""
    return _return_page(request, services, customer.id, order_id, message=message)


@router.post("/orders/{order_id}/return")
def submit_return(order_id: IdPath, request: Request, services: ServicesDep,
                  customer: OptionalCustomer, order_line_id: IdForm,
                  reason: Annotated[str, Form(max_length=32)],
                  quantity: Annotated[int, Form(ge=1, le=1000)] = 1, note: Short = "",
                  preferred_outcome: Annotated[str, Form(max_length=16)] = "refund") -> Response:
    if customer is None:
        return RedirectResponse("/sign-in", status_code=303)
    try:
        with services.db.transaction() as session:
            if preferred_outcome not in ("refund",):
                raise InvalidInput("exchanges are arranged through the API or by the shop; "
                                   "choose a refund here")
            ret = returns.request_return(
                session, clock=services.clock, customer_id=customer.id, order_id=order_id,
                order_line_id=order_line_id, quantity=quantity, reason=reason, note=note,
                preferred_outcome=ReturnOutcome.refund,
                device_id=request.headers.get("x-device-id", "")[:64])
            ret_id = ret.id
    except DomainError as exc:
        return _return_page(request, services, customer.id, order_id, error=exc.detail,
                            status_code=exc.status)
    return RedirectResponse(f"/orders/{order_id}/return?done={ret_id}", status_code=303)


# --- console: review queue -----------------------------------------------------------------

def queue_context(session: Any) -> dict[str, Any]:
    items = queue.review_queue(session)
    counts = Counter(s["name"] for item in items for s in item.case.signals)
    chart = bar_chart_svg(sorted(counts.items(), key=lambda kv: -kv[1]),
                          title="Signals in the open cases", fmt=lambda v: f"{v:.0f}") \
        if counts else ""
    return {"items": items, "recent": queue.recent_decisions(session), "chart": chart,
            "threshold": config.load_config(session).thresholds.review_score,
            "decline_alerts": card_testing.open_alerts(session)}


@router.get(QUEUE_PATH, response_class=HTMLResponse)
def review_queue_page(request: Request, viewer: RiskReviewer, session: SessionDep,
                      done: Annotated[str, Query(max_length=80)] = "",
                      error: Annotated[str, Query(max_length=300)] = "") -> HTMLResponse:
    return render_console(request, "risk/queue.html", viewer,
                          message=done, error=error, **queue_context(session))


@router.post(QUEUE_PATH + "/cases/{case_id}/decision")
def decide_case(case_id: IdPath, services: ServicesDep, viewer: RiskReviewer,
                decision: Annotated[str, Form(max_length=8)], note: Short = "",
                refund_amount: Annotated[str, Form(max_length=14)] = "") -> Response:
    actor = f"admin:{viewer.id}"
    try:
        amount = int(refund_amount) if refund_amount.strip() else None
        with services.db.transaction() as session:
            ret = queue.case_item(session, case_id).ret
            if decision == "approve":
                returns.approve_return(session, clock=services.clock, return_id=ret.id,
                                       actor=actor, note=note, refund_amount=amount)
            elif decision == "deny":
                returns.deny_return(session, clock=services.clock, return_id=ret.id,
                                    actor=actor, note=note)
            else:
                raise InvalidInput("choose approve or deny")
            return_id = ret.id
        with services.db.transaction() as session:
            due = returns.get_return(session, return_id).status is ReturnStatus.approved
        if due:
            flows.refund_return(services.db, clock=services.clock, provider=services.payments,
                                credit_notes=services.credit_notes, return_id=return_id,
                                actor=actor)
    except ValueError:
        return RedirectResponse(f"{QUEUE_PATH}?error={quote('refund amount: minor units')}",
                                status_code=303)
    except DomainError as exc:
        return RedirectResponse(f"{QUEUE_PATH}?error={quote(exc.detail[:280])}", status_code=303)
    outcome = {"approve": "approved", "deny": "denied"}[decision]
    return RedirectResponse(f"{QUEUE_PATH}?done={quote(f'case {case_id}: {outcome}')}",
                            status_code=303)


@router.post(QUEUE_PATH + "/decline-alerts/{alert_id}/reviewed")
def review_decline_alert(alert_id: IdPath, services: ServicesDep, viewer: RiskReviewer,
                         note: Short = "") -> Response:
    """An operator has looked at a card-testing alert (and blocked, reported or dismissed)."""
    try:
        with services.db.transaction() as session:
            card_testing.mark_reviewed(session, clock=services.clock, alert_id=alert_id,
                                       actor=f"admin:{viewer.id}", note=note)
    except DomainError as exc:
        return RedirectResponse(f"{QUEUE_PATH}?error={quote(exc.detail[:280])}", status_code=303)
    return RedirectResponse(f"{QUEUE_PATH}?done={quote(f'alert {alert_id}: reviewed')}",
                            status_code=303)


# --- console: audit log ----------------------------------------------------------------------

def _filter(entity: str, entity_id: str, actor: str, action: str) -> audit.AuditFilter:
    return audit.AuditFilter(entity=entity or None, entity_id=entity_id or None,
                             actor=actor or None, action=action or None)


Filt = Annotated[str, Query(max_length=120)]
AUDIT_PAGE = 50  # changes a page; older pages by keyset (``before_id``)


@router.get(AUDIT_PATH, response_class=HTMLResponse)
def audit_page(request: Request, viewer: AuditReader, session: SessionDep,
               entity: Filt = "", entity_id: Filt = "", actor: Filt = "", action: Filt = "",
               before_id: Annotated[int, Query(ge=0, le=2**53)] = 0) -> HTMLResponse:
    f = _filter(entity, entity_id, actor, action)
    rows = audit.list_audit(session, f, before_id=before_id or None, limit=AUDIT_PAGE)
    query = "&".join(f"{k}={quote(v)}" for k, v in (("entity", entity), ("entity_id", entity_id),
                                                     ("actor", actor), ("action", action)) if v)
    return render_console(request, "risk/audit.html", viewer, rows=rows,
                          entities=audit.audited_entities(), entity=entity, entity_id=entity_id,
                          actor=actor, action=action, query=query, before_id=before_id,
                          next_before=rows[-1].id if len(rows) == AUDIT_PAGE else None)


@router.get(AUDIT_PATH + ".csv")
def audit_page_csv(viewer: AuditReader, services: ServicesDep, entity: Filt = "",
                   entity_id: Filt = "", actor: Filt = "", action: Filt = "") -> Response:
    with services.db.transaction() as session:
        text = "".join(audit.iter_audit_csv(session, _filter(entity, entity_id, actor, action)))
    return StreamingResponse(iter([text]), media_type="text/csv", headers={
        "Content-Disposition": 'attachment; filename="audit.csv"',
        "Cache-Control": "private, no-store"})
