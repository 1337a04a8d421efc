"""Invoices and credit notes: issue (idempotent: the same document again) and download as PDF
(``invoices:manage``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from dropline.invoices import documents, service
from dropline.schemas import IdPath, Output
from dropline.web.deps import ClockDep, Principal, ServicesDep, SessionDep, admin

router = APIRouter(prefix="/admin", tags=["admin"])
Manager = Annotated[Principal, admin("invoices:manage")]
PROBLEM = {"content": {"application/problem+json": {}}}
PDF = {200: {"content": {"application/pdf": {}}}, 404: PROBLEM}
Reference = Annotated[str, Path(max_length=24, pattern=r"^[A-Za-z]{2,3}-[0-9]{6}$")]


class DocumentRead(Output):
    reference: str
    number: int
    currency: str
    net_amount: int
    tax_amount: int
    gross_amount: int
    issued_at: datetime
    content: dict[str, Any]


def _pdf(body: bytes, name: str) -> Response:
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})


@router.post("/orders/{order_id}/invoice", response_model=DocumentRead,
             summary="Issue the order's invoice (or return the one issued)",
             responses={404: PROBLEM, 409: PROBLEM})
def issue_invoice(order_id: IdPath, session: SessionDep, clock: ClockDep,
                  services: ServicesDep, _: Manager) -> DocumentRead:
    return DocumentRead.model_validate(service.issue_invoice(
        session, clock=clock, order_id=order_id, seller=service.seller_of(services.settings)))


@router.post("/refunds/{refund_id}/credit-note", response_model=DocumentRead,
             summary="Issue a refund's credit note (or return the one issued)",
             responses={404: PROBLEM, 409: PROBLEM})
def issue_credit_note(refund_id: IdPath, session: SessionDep, clock: ClockDep,
                      services: ServicesDep, _: Manager) -> DocumentRead:
    return DocumentRead.model_validate(service.issue_credit_note(
        session, clock=clock, refund_id=refund_id, seller=service.seller_of(services.settings)))


@router.get("/invoices/{reference}.pdf", summary="An issued invoice as PDF",
            response_class=Response, responses=PDF)
def invoice_pdf(reference: Reference, session: SessionDep, _: Manager) -> Response:
    invoice = service.get_invoice(session, reference)
    return _pdf(documents.invoice_pdf(reference=invoice.reference, currency=invoice.currency,
                                      issued_at=invoice.issued_at, content=invoice.content),
                invoice.reference)


@router.get("/credit-notes/{reference}.pdf", summary="An issued credit note as PDF",
            response_class=Response, responses=PDF)
def credit_note_pdf(reference: Reference, session: SessionDep, _: Manager) -> Response:
    note = service.get_credit_note(session, reference)
    return _pdf(documents.credit_note_pdf(reference=note.reference, currency=note.currency,
                                          issued_at=note.issued_at, content=note.content),
                note.reference)
