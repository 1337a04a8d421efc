"""The console's Customers pages: the list (search, pages) and a customer's profile (orders,
membership, returns, risk score, acquisition source, notes) with the data export (a JSON
download) and the erasure (asked first). Both call ``dropline.privacy``, as
``dropline customers export|erase`` do."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dropline.customers import service as customers
from dropline.errors import DomainError
from dropline.memberships import service as memberships
from dropline.memberships.models import MembershipTier
from dropline.notes import service as notes
from dropline.orders import service as orders
from dropline.privacy import service as privacy
from dropline.risk import queue as risk
from dropline.risk import returns
from dropline.schemas import IdPath
from dropline.web.admin import AdminViewer, PageNumber, Pager, confirm_page, render, staff_with
from dropline.web.deps import ServicesDep
from dropline.web.navigation import NavItem

PATH = "/admin/customers"
NAV_ITEMS = (NavItem("Customers", PATH, "customers:read"),)
router = APIRouter(include_in_schema=False)
Reader = Annotated[AdminViewer, staff_with("customers:read")]
Manager = Annotated[AdminViewer, staff_with("customers:manage")]
Eraser = Annotated[AdminViewer, staff_with("customers:erase")]


@router.get(PATH, response_class=HTMLResponse)
def customers_page(request: Request, services: ServicesDep, viewer: Reader,
                   q: Annotated[str, Query(max_length=120)] = "",
                   page: PageNumber = 1) -> HTMLResponse:
    pager = Pager(page)
    with services.db.transaction() as session:
        rows, has_next = pager.cut(customers.search_customers(
            session, q=q, limit=pager.limit, offset=pager.offset))
    return render(request, "customers/list.html", viewer, rows=rows, q=q, pager=pager,
                  has_next=has_next, query=urlencode({"q": q}) if q else "")


def _profile(request: Request, services: ServicesDep, viewer: AdminViewer, customer_id: int,
             *, message: str = "", error: str = "", field: str = "", body: str = "",
             status_code: int = 200) -> HTMLResponse:
    with services.db.transaction() as session:
        customer = customers.get_customer(session, customer_id)
        membership = memberships.latest_membership(session, customer_id=customer_id)
        tier = session.get(MembershipTier, membership.tier_id) if membership else None
        score = risk.customer_score(session, clock=services.clock, customer_id=customer_id) \
            if customer.erased_at is None else None
        context = {
            "customer": customer, "membership": membership, "tier": tier, "score": score,
            "orders": orders.list_orders(session, customer_id=customer_id, limit=50),
            "returns": returns.list_returns(session, customer_id=customer_id, limit=50),
            "notes": notes.notes_on(session, subject_type="customer", subject_id=customer_id),
        }
    return render(request, "customers/profile.html", viewer, status_code=status_code,
                  message=message, error=error, field=field, body=body, **context)


@router.get(PATH + "/{customer_id}", response_class=HTMLResponse)
def profile(customer_id: IdPath, request: Request, services: ServicesDep, viewer: Reader,
            done: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return _profile(request, services, viewer, customer_id, message=done)


@router.post(PATH + "/{customer_id}/notes", response_class=HTMLResponse)
def add_note(customer_id: IdPath, request: Request, services: ServicesDep, viewer: Manager,
             body: Annotated[str, Form(max_length=4000)] = "") -> Response:
    try:
        with services.db.transaction() as session:
            customers.get_customer(session, customer_id)
            notes.add_note(session, clock=services.clock, subject_type="customer",
                           subject_id=customer_id, author=f"admin:{viewer.id}", body=body)
    except DomainError as exc:
        return _profile(request, services, viewer, customer_id, error=exc.detail,
                        field=exc.extensions.get("field", "body"), body=body,
                        status_code=exc.status)
    return RedirectResponse(f"{PATH}/{customer_id}?done={quote('Note added')}", status_code=303)


@router.get(PATH + "/{customer_id}/export.json")
def export(customer_id: IdPath, services: ServicesDep, viewer: Manager) -> Response:
    """Everything held about the customer, as a JSON download."""
    with services.db.transaction() as session:
        data = privacy.export_customer(session, customer_id=customer_id)
    return Response(json.dumps(data, indent=2, ensure_ascii=False), media_type="application/json",
                    headers={"Content-Disposition":
                             f'attachment; filename="customer-{customer_id}.json"',
                             "Cache-Control": "private, no-store"})


@router.post(PATH + "/{customer_id}/erase", response_class=HTMLResponse)
def erase(customer_id: IdPath, request: Request, services: ServicesDep, viewer: Eraser,
          confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    try:
        with services.db.transaction() as session:
            customer = customers.get_customer(session, customer_id)
            if confirm != "yes":
                return confirm_page(
                    request, viewer, title=f"Erase customer {customer_id}",
                    question=f"Erase the personal data of {customer.email}? Their email, name "
                             "and addresses are replaced; orders, amounts and tax records "
                             "stay. This cannot be undone.",
                    action=f"{PATH}/{customer_id}/erase", fields={},
                    button="Erase personal data", back=f"{PATH}/{customer_id}")
            privacy.erase_customer(session, clock=services.clock, customer_id=customer_id)
    except DomainError as exc:
        return _profile(request, services, viewer, customer_id, error=exc.detail,
                        field="erase", status_code=exc.status)
    return RedirectResponse(f"{PATH}/{customer_id}?done={quote('Personal data erased')}",
                            status_code=303)
