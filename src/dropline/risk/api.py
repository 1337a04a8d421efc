"""Returns, serials, chargebacks, the review queue, risk settings and the audit log as JSON.

Customers request and list their returns. Admin endpoints take scoped tokens
(``returns:manage``, ``risk:review``, ``audit:read``); those that may move money (receive,
which can approve and refund automatically; decide; refund) take an ``Idempotency-Key``.
The audit log is read-only: there is no endpoint that updates or deletes it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse

import dropline.risk.scopes  # noqa: F401 - registers the scopes
from dropline.catalog.service import get_product
from dropline.idempotency.service import Claim
from dropline.risk import audit, config, flows, queue, returns
from dropline.risk.models import ReturnOutcome, ReturnStatus
from dropline.risk.schemas import (
    AuditRead,
    CaseRead,
    ChargebackCreate,
    ChargebackRead,
    CustomerScoreRead,
    DecisionCreate,
    DecisionRead,
    PolicyRead,
    PolicyUpdate,
    ReceiveCreate,
    RefundPay,
    ReturnCreate,
    ReturnRead,
    SerialRead,
    SerialsAssign,
    SerialsRegister,
    SettingsUpdate,
    SignalRead,
)
from dropline.schemas import IDEMPOTENCY_KEY_PATTERN, IdPath, Instant
from dropline.web.deps import ClockDep, CustomerDep, Principal, ServicesDep, SessionDep, admin
from dropline.web.idempotency import run_idempotent

router = APIRouter(tags=["returns and risk"])
PROBLEM = {"content": {"application/problem+json": {}}}
IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key", max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN,
    description="unique per attempt (e.g. a UUID); resend the same key when retrying")]
DeviceId = Annotated[str, Header(alias="X-Device-Id", max_length=64,
                                 description="the app's device id, if it sends one")]
ReturnsAdmin = Annotated[Principal, admin("returns:manage")]
Reviewer = Annotated[Principal, admin("risk:review")]
AuditReader = Annotated[Principal, admin("audit:read")]


@router.post("/orders/{order_id}/returns", response_model=ReturnRead,
             status_code=status.HTTP_201_CREATED, summary="Ask to return part of my order",
             responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def request_return(order_id: IdPath, body: ReturnCreate, session: SessionDep, clock: ClockDep,
                   customer: CustomerDep, device_id: DeviceId = "") -> ReturnRead:
    line_id = returns.line_of(session, order_id=order_id, order_line_id=body.order_line_id,
                              variant_id=body.variant_id)
    ret = returns.request_return(
        session, clock=clock, customer_id=customer.id, order_id=order_id,
        order_line_id=line_id, quantity=body.quantity, reason=body.reason,
        note=body.note, preferred_outcome=body.preferred_outcome,
        exchange_variant_id=body.exchange_variant_id, device_id=device_id)
    return ReturnRead.model_validate(ret)


@router.get("/returns", response_model=list[ReturnRead], summary="My returns")
def my_returns(session: SessionDep, customer: CustomerDep,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[ReturnRead]:
    return [ReturnRead.model_validate(r)
            for r in returns.list_returns(session, customer_id=customer.id, limit=limit)]


@router.get("/admin/returns", response_model=list[ReturnRead], tags=["admin"],
            summary="All returns")
def all_returns(session: SessionDep, _: ReturnsAdmin,
                status_: Annotated[ReturnStatus | None, Query(alias="status")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[ReturnRead]:
    return [ReturnRead.model_validate(r) for r in
            returns.list_returns(session, status=status_, limit=limit, offset=offset)]


@router.get("/admin/returns/{return_id}", response_model=ReturnRead, tags=["admin"],
            summary="One return")
def one_return(return_id: IdPath, session: SessionDep, _: ReturnsAdmin) -> ReturnRead:
    return ReturnRead.model_validate(returns.get_return(session, return_id))


def _pay_if_approved(services: ServicesDep, return_id: int, actor: str) -> ReturnRead:
    with services.db.transaction() as session:
        ret = returns.get_return(session, return_id)
        due = ret.status is ReturnStatus.approved and ret.outcome is ReturnOutcome.refund
    if due:
        flows.refund_return(services.db, clock=services.clock, provider=services.payments,
                            credit_notes=services.credit_notes, return_id=return_id,
                            actor=actor)
    with services.db.transaction() as session:
        return ReturnRead.model_validate(returns.get_return(session, return_id))


def _exists(services: ServicesDep, return_id: int) -> None:
    # An unknown id is refused before the key is claimed: probing leaves no record behind.
    with services.db.transaction() as session:
        returns.get_return(session, return_id)


@router.post("/admin/returns/{return_id}/receive", response_model=ReturnRead, tags=["admin"],
             summary="Record the goods received (idempotent); may approve and refund",
             responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
             description="Records grade and serial, restocks, scores the return. Below the "
                         "review threshold it is approved and refunded (or exchanged) at once; "
                         "at or above it, it waits in the review queue.")
def receive(return_id: IdPath, body: ReceiveCreate, request: Request, services: ServicesDep,
            principal: ReturnsAdmin, idempotency_key: IdempotencyKey) -> JSONResponse:
    _exists(services, return_id)

    def operation(_: Claim) -> tuple[int, ReturnRead]:
        with services.db.transaction() as session:
            returns.receive_return(session, clock=services.clock, return_id=return_id,
                                   grade=body.grade, location_code=body.location_code,
                                   serial=body.serial)
        return 200, _pay_if_approved(services, return_id, "system")

    return run_idempotent(services, request=request, principal=principal, key=idempotency_key,
                          body=body, operation=operation)


@router.post("/admin/returns/{return_id}/decision", response_model=ReturnRead, tags=["admin"],
             summary="Approve (and refund) or deny a return in review (idempotent)",
             responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def decide(return_id: IdPath, body: DecisionCreate, request: Request, services: ServicesDep,
           principal: Reviewer, idempotency_key: IdempotencyKey) -> JSONResponse:
    _exists(services, return_id)

    def operation(_: Claim) -> tuple[int, ReturnRead]:
        with services.db.transaction() as session:
            if body.decision == "approve":
                returns.approve_return(session, clock=services.clock, return_id=return_id,
                                       actor=principal.key, note=body.note, outcome=body.outcome,
                                       refund_amount=body.refund_amount,
                                       waive_fee=body.waive_fee)
            else:
                returns.deny_return(session, clock=services.clock, return_id=return_id,
                                    actor=principal.key, note=body.note)
        return 200, _pay_if_approved(services, return_id, principal.key)

    return run_idempotent(services, request=request, principal=principal, key=idempotency_key,
                          body=body, operation=operation)


@router.post("/admin/returns/{return_id}/refund", response_model=ReturnRead, tags=["admin"],
             summary="Pay (or resume paying) an approved return's refund (idempotent)",
             responses={404: PROBLEM, 409: PROBLEM})
def refund(return_id: IdPath, request: Request, services: ServicesDep, principal: ReturnsAdmin,
           idempotency_key: IdempotencyKey) -> JSONResponse:
    _exists(services, return_id)

    def operation(_: Claim) -> tuple[int, ReturnRead]:
        flows.refund_return(services.db, clock=services.clock, provider=services.payments,
                            credit_notes=services.credit_notes, return_id=return_id,
                            actor=principal.key)
        with services.db.transaction() as session:
            return 200, ReturnRead.model_validate(returns.get_return(session, return_id))

    return run_idempotent(services, request=request, principal=principal, key=idempotency_key,
                          body=RefundPay(), operation=operation)


@router.post("/admin/orders/{order_id}/serials", response_model=list[SerialRead],
             status_code=status.HTTP_201_CREATED, tags=["admin"],
             summary="Record the serials sold on an order line")
def assign_serials(order_id: IdPath, body: SerialsAssign, session: SessionDep, clock: ClockDep,
                   _: ReturnsAdmin) -> list[SerialRead]:
    line_id = returns.line_of(session, order_id=order_id, order_line_id=body.order_line_id,
                              variant_id=body.variant_id)
    return [SerialRead.model_validate(u) for u in returns.assign_serials(
        session, clock=clock, order_id=order_id, order_line_id=line_id, serials=body.serials)]


@router.post("/admin/serials", response_model=list[SerialRead],
             status_code=status.HTTP_201_CREATED, tags=["admin"],
             summary="Register serialised (graded) units arriving in stock")
def register_serials(body: SerialsRegister, session: SessionDep, clock: ClockDep,
                     _: ReturnsAdmin) -> list[SerialRead]:
    return [SerialRead.model_validate(u) for u in returns.register_serials(
        session, clock=clock, variant_id=body.variant_id, serials=body.serials,
        location_code=body.location_code)]


@router.post("/admin/chargebacks", response_model=ChargebackRead,
             status_code=status.HTTP_201_CREATED, tags=["admin"],
             summary="Record a chargeback reported by the card network")
def chargeback(body: ChargebackCreate, session: SessionDep, clock: ClockDep,
               principal: ReturnsAdmin) -> ChargebackRead:
    return ChargebackRead.model_validate(returns.record_chargeback(
        session, clock=clock, order_id=body.order_id, amount=body.amount, reason=body.reason,
        actor=principal.key))


@router.put("/admin/products/{product_id}/return-policy", response_model=PolicyRead,
            tags=["admin"], summary="Set a product's (or one variant's) return rules")
def set_policy(product_id: IdPath, body: PolicyUpdate, session: SessionDep, clock: ClockDep,
               _: ReturnsAdmin) -> PolicyRead:
    get_product(session, product_id)
    return PolicyRead.model_validate(returns.set_return_policy(
        session, clock=clock, product_id=product_id, variant_id=body.variant_id,
        window_days=body.window_days, final_sale=body.final_sale,
        restocking_fee_bps=body.restocking_fee_bps))


def case_read(item: queue.QueueItem) -> CaseRead:
    case = item.case
    return CaseRead(id=case.id, return_id=case.return_id, customer_id=case.customer_id,
                    score=case.score, threshold=case.threshold, status=case.status.value,
                    signals=[SignalRead(**s) for s in case.signals], created_at=case.created_at,
                    decided_at=case.decided_at,
                    decisions=[DecisionRead.model_validate(d) for d in item.decisions])


@router.get("/admin/risk/queue", response_model=list[CaseRead], tags=["admin"],
            summary="The review queue: open cases, highest score first")
def review_queue(session: SessionDep, _: Reviewer,
                 limit: Annotated[int, Query(ge=1, le=500)] = 200) -> list[CaseRead]:
    return [case_read(item) for item in queue.review_queue(session, limit=limit)]


@router.get("/admin/risk/cases/{case_id}", response_model=CaseRead, tags=["admin"],
            summary="One case with its signals and decisions")
def one_case(case_id: IdPath, session: SessionDep, _: Reviewer) -> CaseRead:
    return case_read(queue.case_item(session, case_id))


@router.get("/admin/risk/customers/{customer_id}", response_model=CustomerScoreRead,
            tags=["admin"], summary="A customer's risk score, explained")
def customer_score(customer_id: IdPath, session: SessionDep, clock: ClockDep,
                   _: Reviewer) -> CustomerScoreRead:
    score = queue.customer_score(session, clock=clock, customer_id=customer_id)
    return CustomerScoreRead(customer_id=customer_id, score=score.score,
                             threshold=score.threshold, needs_review=score.needs_review,
                             signals=[SignalRead(**s.as_dict()) for s in score.signals])


@router.get("/admin/risk/settings", tags=["admin"], summary="Returns and risk settings")
def get_settings(session: SessionDep, _: Reviewer) -> dict[str, object]:
    return config.load_config(session).raw


@router.patch("/admin/risk/settings", tags=["admin"], summary="Change returns and risk settings",
              responses={422: PROBLEM})
def patch_settings(body: SettingsUpdate, session: SessionDep, clock: ClockDep,
                   _: Reviewer) -> dict[str, object]:
    return config.update_settings(session, clock=clock, values=body.values).raw


def _audit_filter(entity: str | None, entity_id: str | None, actor: str | None,
                  action: str | None, since: datetime | None,
                  until: datetime | None) -> audit.AuditFilter:
    return audit.AuditFilter(entity=entity, entity_id=entity_id, actor=actor, action=action,
                             since=since, until=until)


AuditEntity = Annotated[str | None, Query(max_length=40)]
AuditText = Annotated[str | None, Query(max_length=120)]
AuditTime = Annotated[Instant | None, Query()]


@router.get("/admin/audit", response_model=list[AuditRead], tags=["admin"],
            summary="The audit log, newest first (read-only)")
def audit_log(session: SessionDep, _: AuditReader, entity: AuditEntity = None,
              entity_id: AuditText = None, actor: AuditText = None,
              action: Annotated[str | None, Query(max_length=16)] = None,
              since: AuditTime = None, until: AuditTime = None,
              before_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditRead]:
    f = _audit_filter(entity, entity_id, actor, action, since, until)
    return [AuditRead.model_validate(row)
            for row in audit.list_audit(session, f, before_id=before_id, limit=limit)]


@router.get("/admin/audit.csv", tags=["admin"], summary="Export the audit log as CSV",
            response_class=StreamingResponse)
def audit_csv(services: ServicesDep, _: AuditReader, entity: AuditEntity = None,
              entity_id: AuditText = None, actor: AuditText = None,
              action: Annotated[str | None, Query(max_length=16)] = None,
              since: AuditTime = None, until: AuditTime = None) -> StreamingResponse:
    f = _audit_filter(entity, entity_id, actor, action, since, until)
    with services.db.transaction() as session:
        # Read in one transaction, then stream: the export is a consistent snapshot.
        text = "".join(audit.iter_audit_csv(session, f))
    return StreamingResponse(iter([text]), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
