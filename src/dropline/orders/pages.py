"""The console's Orders pages: the list (search, filters, pages), an order's page (lines,
payments, tax, discount, the fulfilment decision and its reason, shipments, timeline, mails,
notes) with its actions, the packer's pick list and the "find an order or serial" box.

Every action calls the same services and flows as the admin API and the CLI. A refused form
re-renders the order's page with the message beside its field and the values kept (4xx);
success redirects (303) to the page with a one-line message. Cancelling asks first.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from dropline.console.order_search import OrderFilter, search_orders
from dropline.customers.models import Customer
from dropline.drops.models import Drop
from dropline.errors import DomainError, InvalidInput, NotFound
from dropline.fulfilment.models import FulfilmentDecisionRow
from dropline.invoices import documents as invoice_documents
from dropline.invoices import service as invoices
from dropline.invoices.service import seller_of
from dropline.locations.models import Location
from dropline.money import parse_money
from dropline.notes import service as notes
from dropline.notifications import service as mails
from dropline.orders import documents, flows, lifecycle, service, shipments
from dropline.orders.models import OrderStatus
from dropline.orders.rules import BEFORE_PACKING, OrderStage
from dropline.orders.schemas import AddressIn
from dropline.risk.models import SerialUnit
from dropline.schemas import IdPath
from dropline.web.admin import AdminViewer, PageNumber, Pager, confirm_page, render, staff_with
from dropline.web.deps import ServicesDep
from dropline.web.navigation import NavItem

PATH, PICK_PATH = "/admin/orders", "/admin/pick-list"
NAV_ITEMS = (NavItem("Orders", PATH, "orders:read"),
             NavItem("Pick list", PICK_PATH, "orders:fulfil"))
router = APIRouter(include_in_schema=False)
Reader = Annotated[AdminViewer, staff_with("orders:read")]
Fulfiller = Annotated[AdminViewer, staff_with("orders:fulfil")]
Refunder = Annotated[AdminViewer, staff_with("orders:refund")]
Invoicer = Annotated[AdminViewer, staff_with("invoices:manage")]
Text = Annotated[str, Form(max_length=300)]
Filter = Annotated[str, Query(max_length=120)]
ACTION_FIELDS = ("amount", "restocking_fee", "line_id", "reason", "carrier", "tracking_number",
                 "name", "line1", "line2", "city", "postcode", "country", "body")


# ------------------------------------------------------------------------------ the list

def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("Write the date as YYYY-MM-DD.", field=field) from None


def _order_filter(q: str, status: str, stage: str, path: str, drop: str, since: str,
                  until: str, location: str) -> OrderFilter:
    try:
        return OrderFilter(
            q=q, status=OrderStatus(status) if status else None,
            stage=OrderStage(stage) if stage else None, path=path,
            drop_id=int(drop) if drop else None, since=_day(since, "since"),
            until=_day(until, "until"), location=location)
    except ValueError:
        raise InvalidInput("Choose a status, stage or drop from the lists.",
                           field="filters") from None


@router.get(PATH, response_class=HTMLResponse)
def orders_page(request: Request, services: ServicesDep, viewer: Reader, q: Filter = "",
                status: Filter = "", stage: Filter = "", path: Filter = "", drop: Filter = "",
                since: Filter = "", until: Filter = "", location: Filter = "",
                page: PageNumber = 1) -> HTMLResponse:
    given = {"q": q, "status": status, "stage": stage, "path": path, "drop": drop,
             "since": since, "until": until, "location": location}
    pager, rows, has_next, error, field = Pager(page), [], False, "", ""
    with services.db.transaction() as session:
        try:
            found = search_orders(session, _order_filter(**given), limit=pager.limit,
                                  offset=pager.offset)
            rows, has_next = pager.cut(found)
        except DomainError as exc:
            error, field = exc.detail, exc.extensions.get("field", "")
        drops = [(d.id, d.name) for d in session.scalars(select(Drop).order_by(
            Drop.starts_at.desc()).limit(50))]
        locations = list(session.scalars(select(Location.code).order_by(Location.code)))
    return render(request, "orders/list.html", viewer, status_code=422 if error else 200,
                  rows=rows, given=given, pager=pager, has_next=has_next,
                  query=urlencode({k: v for k, v in given.items() if v}),
                  statuses=[s.value for s in OrderStatus], stages=[s.value for s in OrderStage],
                  paths=["central", "hub-window", "pop-up", "click-collect"], drops=drops,
                  locations=locations, error=error, field=field)


# ---------------------------------------------------------------------------- an order

def _order_context(services: ServicesDep, order_id: int) -> dict[str, Any]:
    with services.db.transaction() as session:
        order = service.get_order(session, order_id)
        detail = service.order_detail(session, order)
        decision = session.scalar(select(FulfilmentDecisionRow).where(
            FulfilmentDecisionRow.order_id == order_id).order_by(
            FulfilmentDecisionRow.id.desc()).limit(1))
        customer = session.get(Customer, order.customer_id)
        invoice = invoices.invoice_of(session, order_id)
        return {
            "order": order, "lines": detail.lines, "payments": detail.payments,
            "refunds": detail.refunds, "decision": decision,
            "customer": customer,
            "shipments": shipments.order_shipments(session, order_id),
            "timeline": service.order_timeline(session, order_id),
            "mails": mails.order_mails(session, order_id=order_id)[:20],
            "notes": notes.notes_on(session, subject_type="order", subject_id=order_id),
            "invoice": invoice.reference if invoice else None,
            "before_packing": order.stage in BEFORE_PACKING,
            "refundable": order.total_amount - order.refunded_amount,
            "carriers": sorted(services.carriers),
            "serials": list(session.scalars(select(SerialUnit.serial).where(
                SerialUnit.order_id == order_id))),
        }


def _order_page(request: Request, services: ServicesDep, viewer: AdminViewer, order_id: int,
                *, message: str = "", error: str = "", field: str = "",
                form: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    context = _order_context(services, order_id)
    kept = {name: "" for name in ACTION_FIELDS}
    kept.update({k: str(v) for k, v in context["order"].shipping_address.items()})
    kept["carrier"] = "manual"
    kept.update(form or {})
    return render(request, "orders/detail.html", viewer, status_code=status_code,
                  message=message, error=error, field=field, form=kept,
                  form_key=uuid.uuid4().hex, **context)


def _form_key(sent: str) -> str:
    valid = len(sent) == 32 and all(c in "0123456789abcdef" for c in sent)
    return f"console-{sent if valid else uuid.uuid4().hex}"


def _done(order_id: int, message: str) -> RedirectResponse:
    return RedirectResponse(f"{PATH}/{order_id}?done={quote(message)}", status_code=303)


def _refused(request: Request, services: ServicesDep, viewer: AdminViewer, order_id: int,
             exc: DomainError, form: dict[str, str], default_field: str) -> HTMLResponse:
    return _order_page(request, services, viewer, order_id, error=exc.detail,
                       field=exc.extensions.get("field", default_field), form=form,
                       status_code=exc.status)


@router.get(PATH + "/find", response_class=HTMLResponse)
def find(request: Request, services: ServicesDep, viewer: Reader,
         q: Annotated[str, Query(max_length=80)] = "") -> Response:
    """An order number (``1042``, ``#1042``) or a unit's serial, typed or scanned: straight
    to the order; anything else goes to the list's search."""
    term = q.strip().lstrip("#")
    with services.db.transaction() as session:
        order_id: int | None = None
        if term.isdigit() and len(term) <= 15:
            try:
                order_id = service.get_order(session, int(term)).id
            except NotFound:
                order_id = None
        if order_id is None and term:
            order_id = session.scalar(select(SerialUnit.order_id).where(
                SerialUnit.serial == term))
    if order_id is not None:
        return RedirectResponse(f"{PATH}/{order_id}", status_code=303)
    return RedirectResponse(f"{PATH}?{urlencode({'q': term})}", status_code=303)


@router.get(PATH + "/{order_id}", response_class=HTMLResponse)
def order_page(order_id: IdPath, request: Request, services: ServicesDep, viewer: Reader,
               done: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return _order_page(request, services, viewer, order_id, message=done)


@router.post(PATH + "/{order_id}/notes", response_class=HTMLResponse)
def add_note(order_id: IdPath, request: Request, services: ServicesDep, viewer: Fulfiller,
             body: Annotated[str, Form(max_length=4000)] = "") -> Response:
    try:
        with services.db.transaction() as session:
            service.get_order(session, order_id)
            notes.add_note(session, clock=services.clock, subject_type="order",
                           subject_id=order_id, author=f"admin:{viewer.id}", body=body)
    except DomainError as exc:
        return _refused(request, services, viewer, order_id, exc, {"body": body}, "body")
    return _done(order_id, "Note added")


@router.post(PATH + "/{order_id}/pack", response_class=HTMLResponse)
def pack(order_id: IdPath, request: Request, services: ServicesDep,
         viewer: Fulfiller) -> Response:
    """Mark packed: allocates, starts picking and packs, whichever steps are left."""
    try:
        with services.db.transaction() as session:
            order = service.get_order(session, order_id)
            if order.stage not in BEFORE_PACKING:
                raise InvalidInput(f"the order is {order.stage.value}; only an order not yet "
                                   "packed can be packed", field="pack")
        for _ in range(3):
            with services.db.transaction() as session:
                order = service.get_order(session, order_id)
                if order.stage is OrderStage.packed:
                    break
                shipments.advance(session, clock=services.clock, order=order)
    except DomainError as exc:
        return _refused(request, services, viewer, order_id, exc, {}, "pack")
    return _done(order_id, "Packed")


@router.post(PATH + "/{order_id}/ship", response_class=HTMLResponse)
def ship(order_id: IdPath, request: Request, services: ServicesDep, viewer: Fulfiller,
         carrier: Annotated[str, Form(max_length=32)] = "manual",
         tracking_number: Annotated[str, Form(max_length=64)] = "") -> Response:
    kept = {"carrier": carrier, "tracking_number": tracking_number}
    tracking = tracking_number.strip()
    try:
        if not tracking or not all(c.isalnum() or c in " -" for c in tracking):
            raise InvalidInput("Enter the carrier's tracking number (letters, digits, spaces "
                               "and dashes).", field="tracking_number")
        flows.ship_order(services.db, clock=services.clock, carriers=services.carriers,
                         order_id=order_id, carrier=carrier, tracking_number=tracking)
    except DomainError as exc:
        return _refused(request, services, viewer, order_id, exc, kept, "tracking_number")
    return _done(order_id, f"Shipped with {carrier}, tracking {tracking}")


def refund_amount(line_total: int | None, *, amount: str, restocking_fee: str) -> int:
    """The refund a form asks for: the amount typed, else the chosen line's value, less the
    restocking fee (both typed in major units: "12.50")."""
    try:
        fee = parse_money(restocking_fee) if restocking_fee.strip() else 0
    except ValueError:
        raise InvalidInput("Write the fee as an amount, e.g. 4.50.",
                           field="restocking_fee") from None
    if amount.strip():
        try:
            gross = parse_money(amount)
        except ValueError:
            raise InvalidInput("Write the amount as e.g. 12.50.", field="amount") from None
    elif line_total is not None:
        gross = line_total
    else:
        raise InvalidInput("Choose a line or enter an amount.", field="amount")
    if fee >= gross:
        raise InvalidInput("The restocking fee must be less than the amount refunded.",
                           field="restocking_fee")
    return gross - fee


@router.post(PATH + "/{order_id}/refund", response_class=HTMLResponse)
def refund(order_id: IdPath, request: Request, services: ServicesDep, viewer: Refunder,
           line_id: Annotated[str, Form(max_length=20)] = "",
           amount: Annotated[str, Form(max_length=20)] = "",
           restocking_fee: Annotated[str, Form(max_length=20)] = "",
           reason: Text = "", form_key: Annotated[str, Form(max_length=32)] = "") -> Response:
    """A refund of an amount or of one line's value, less a restocking fee. The page's form
    key is the refund's idempotency key: the same form sent twice refunds once."""
    kept = {"line_id": line_id, "amount": amount, "restocking_fee": restocking_fee,
            "reason": reason}
    try:
        with services.db.transaction() as session:
            detail = service.order_detail(session, service.get_order(session, order_id))
            line_total = None
            if line_id:
                line = next((li for li in detail.lines if str(li.id) == line_id), None)
                if line is None:
                    raise InvalidInput("Choose one of the order's lines.", field="line_id")
                added_tax = line.tax_amount if detail.order.tax_added_amount else 0
                line_total = line.line_total_amount - line.discount_amount + added_tax
            value = refund_amount(line_total, amount=amount, restocking_fee=restocking_fee)
            currency = detail.order.currency
        if not reason.strip():
            raise InvalidInput("Say why (the customer sees it on the credit note).",
                               field="reason")
        flows.refund_order(services.db, clock=services.clock, provider=services.payments,
                           credit_notes=services.credit_notes, order_id=order_id, amount=value, reason=reason.strip(),
                           actor=f"admin:{viewer.id}", idempotency_key=_form_key(form_key))
    except DomainError as exc:
        return _refused(request, services, viewer, order_id, exc, kept, "amount")
    return _done(order_id, f"Refunded {value / 100:.2f} {currency}")


@router.post(PATH + "/{order_id}/cancel", response_class=HTMLResponse)
def cancel(order_id: IdPath, request: Request, services: ServicesDep, viewer: Refunder,
           reason: Text = "", confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    try:
        if not reason.strip():
            raise InvalidInput("Say why the order is cancelled.", field="cancel_reason")
        if confirm != "yes":
            return confirm_page(request, viewer, title=f"Cancel order {order_id}",
                                question=f"Cancel order {order_id}? Everything not yet "
                                         "refunded is refunded to the card and the units go "
                                         "back to stock.",
                                action=f"{PATH}/{order_id}/cancel",
                                fields={"reason": reason.strip()}, button="Cancel the order",
                                back=f"{PATH}/{order_id}")
        flows.cancel_order(services.db, clock=services.clock, provider=services.payments,
                           policy=services.checkout, credit_notes=services.credit_notes,
                           order_id=order_id, reason=reason.strip(),
                           actor=f"admin:{viewer.id}",
                           idempotency_key=f"console-{uuid.uuid4().hex}")
    except DomainError as exc:
        return _refused(request, services, viewer, order_id, exc, {"reason": reason},
                        "cancel_reason")
    return _done(order_id, "Cancelled and refunded")


@router.post(PATH + "/{order_id}/address", response_class=HTMLResponse)
def change_address(order_id: IdPath, request: Request, services: ServicesDep,
                   viewer: Fulfiller, name: Text = "", line1: Text = "", line2: Text = "",
                   city: Text = "", postcode: Annotated[str, Form(max_length=20)] = "",
                   country: Annotated[str, Form(max_length=4)] = "GB") -> Response:
    kept = {"name": name, "line1": line1, "line2": line2, "city": city, "postcode": postcode,
            "country": country}
    try:
        try:
            address = AddressIn(**{k: v.strip() for k, v in kept.items()} |
                                {"country": country.strip().upper()})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidInput(f"Check the {first['loc'][0]}: {first['msg'].lower()}.",
                               field=str(first["loc"][0])) from None
        with services.db.transaction() as session:
            lifecycle.change_address(session, clock=services.clock,
                                     order=service.get_order(session, order_id),
                                     address=address.model_dump())
    except DomainError as exc:
        return _refused(request, services, viewer, order_id, exc, kept, "line1")
    return _done(order_id, "Address changed")


@router.post(PATH + "/{order_id}/mails/{mail_id}/resend", response_class=HTMLResponse)
def resend(order_id: IdPath, mail_id: IdPath, request: Request, services: ServicesDep,
           viewer: Fulfiller) -> Response:
    try:
        with services.db.transaction() as session:
            copy = mails.resend_mail(session, clock=services.clock, order_id=order_id,
                                     mail_id=mail_id)
            template = copy.template
    except DomainError as exc:
        return _refused(request, services, viewer, order_id, exc, {}, "mails")
    return _done(order_id, f"The {template} mail is queued again")


@router.get(PATH + "/{order_id}/invoice.pdf")
def invoice_pdf(order_id: IdPath, services: ServicesDep, viewer: Invoicer) -> Response:
    """The order's invoice (issued now if it has none yet), as PDF."""
    with services.db.transaction() as session:
        invoice = invoices.issue_invoice(session, clock=services.clock, order_id=order_id,
                                         seller=seller_of(services.settings))
        body = invoice_documents.invoice_pdf(reference=invoice.reference,
                                             currency=invoice.currency,
                                             issued_at=invoice.issued_at,
                                             content=invoice.content)
        name = invoice.reference
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}.pdf"',
        "Cache-Control": "private, no-store"})


@router.get("/admin/shipments/{shipment_id}/{document}.pdf")
def shipment_pdf(shipment_id: IdPath, document: str, services: ServicesDep,
                 viewer: Fulfiller) -> Response:
    if document not in ("packing-slip", "label"):
        raise NotFound(f"no {document[:20]!r} document; packing-slip or label")
    with services.db.transaction() as session:
        doc = documents.shipment_document(session, shipment_id=shipment_id,
                                          shop_name=services.settings.shop.name)
    body = documents.packing_slip_pdf(doc) if document == "packing-slip" \
        else documents.label_pdf(doc)
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="order-{doc.order_id}-{shipment_id}-'
                               f'{document}.pdf"', "Cache-Control": "private, no-store"})


# --------------------------------------------------------------------------- pick list

@router.get(PICK_PATH, response_class=HTMLResponse)
def pick_list(request: Request, services: ServicesDep, viewer: Fulfiller,
              location: Annotated[str, Query(max_length=32)] = "") -> HTMLResponse:
    """Today's pick list at a location (the packer's phone page), with the find box."""
    with services.db.transaction() as session:
        codes = list(session.scalars(select(Location.code).order_by(Location.code)))
        chosen = location if location in codes else (codes[0] if codes else "")
        rows = shipments.pick_list(session, location_code=chosen,
                                   day=services.clock.now().date()) if chosen else []
    return render(request, "orders/pick_list.html", viewer, rows=rows, codes=codes,
                  location=chosen, day=services.clock.now().date())
