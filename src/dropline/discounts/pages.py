"""The console's discount codes: a paginated list, a form to create a code (percentage,
fixed amount or free delivery; optionally only for one drop or product family, between two
London times, with use caps), and withdrawal after a confirmation page. The forms call the
same services as the API and the CLI (``discounts.service``), under ``discounts:manage``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from dropline.catalog.service import list_families
from dropline.discounts import service
from dropline.discounts.models import DiscountCode
from dropline.discounts.rules import DiscountKind, Stacking
from dropline.drops.service import list_drops
from dropline.errors import DomainError
from dropline.schemas import IdPath
from dropline.services import Services
from dropline.web.admin import AdminViewer, render, staff_with
from dropline.web.deps import ServicesDep
from dropline.web.forms import (
    FormError,
    done,
    from_domain,
    parse_amount,
    parse_choice,
    parse_int,
    parse_local_time,
)
from dropline.web.navigation import NavItem
from dropline.web.templating import SHOP_TIMEZONE

router = APIRouter(include_in_schema=False)
PATH = "/admin/discounts"
NAV_ITEMS = (NavItem("Discounts", PATH, scope="discounts:manage"),)
PAGE_SIZE = 25
Manager = Annotated[AdminViewer, staff_with("discounts:manage")]
Text = Annotated[str, Form(max_length=200)]
KINDS = [(DiscountKind.percentage.value, "Percentage off"),
         (DiscountKind.fixed.value, "Fixed amount off"),
         (DiscountKind.free_delivery.value, "Free delivery")]
STACKING = [(Stacking.with_member_price.value, "On top of the member price"),
            (Stacking.instead_of_member_price.value, "Instead of the member price")]


@router.get(PATH, response_class=HTMLResponse)
def discounts_page(request: Request, viewer: Manager, services: ServicesDep,
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                   done_: Annotated[str, Query(alias="done", max_length=200)] = ""
                   ) -> HTMLResponse:
    with services.db.transaction() as session:
        codes = service.list_codes(session, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        total = session.scalar(select(func.count()).select_from(DiscountCode)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    return render(request, "discounts/list.html", viewer, codes=codes, total=total, page=page,
                  pages=pages, message=done_, now=services.clock.now(),
                  prev_link=f"{PATH}?page={page - 1}" if page > 1 else None,
                  next_link=f"{PATH}?page={page + 1}" if page < pages else None)


def _new_page(request: Request, viewer: AdminViewer, services: Services, *,
              values: dict[str, Any], error: FormError | None = None) -> HTMLResponse:
    with services.db.transaction() as session:
        drops = [("", "any drop")] + [(d.id, d.name) for d in list_drops(session, limit=100)]
        families = [("", "any family")] + [(f.slug, f.name) for f in list_families(session)]
    return render(request, "discounts/new.html", viewer,
                  status_code=error.status if error else 200, values=values,
                  kinds=KINDS, stacking=STACKING, drop_options=drops, family_options=families,
                  currency=services.settings.shop.currency,
                  **(error.context() if error else {}))


@router.get(PATH + "/new", response_class=HTMLResponse)
def new_code_form(request: Request, viewer: Manager, services: ServicesDep) -> HTMLResponse:
    return _new_page(request, viewer, services, values={"kind": "percentage",
                                                        "stacking": "with-member-price"})


@router.post(PATH + "/new", response_class=HTMLResponse)
def create_code(request: Request, viewer: Manager, services: ServicesDep, code: Text = "",
                kind: Text = "", percent: Text = "", amount: Text = "",
                description: Text = "", drop_id: Text = "", family: Text = "",
                starts_at: Text = "", ends_at: Text = "", max_uses: Text = "",
                max_uses_per_customer: Text = "", stacking: Text = "") -> Response:
    values = {"code": code, "kind": kind, "percent": percent, "amount": amount,
              "description": description, "drop_id": drop_id, "family": family,
              "starts_at": starts_at, "ends_at": ends_at, "max_uses": max_uses,
              "max_uses_per_customer": max_uses_per_customer, "stacking": stacking}
    try:
        if not code.strip():
            raise FormError("type the code shoppers will enter, e.g. SPRING10", field="code")
        chosen = parse_choice(kind, DiscountKind, "kind")
        spec = service.CodeSpec(
            code=code.strip()[:32], kind=chosen, currency=services.settings.shop.currency,
            percent=parse_int(percent, "percent", low=1, high=100)
            if chosen is DiscountKind.percentage else 0,
            amount=parse_amount(amount, "amount") if chosen is DiscountKind.fixed else 0,
            description=description.strip(),
            drop_ids=[parse_int(drop_id, "drop_id", low=1, high=2**53)] if drop_id else [],
            family_slugs=[family] if family else [],
            starts_at=parse_local_time(starts_at, "starts_at", timezone=SHOP_TIMEZONE)
            if starts_at.strip() else None,
            ends_at=parse_local_time(ends_at, "ends_at", timezone=SHOP_TIMEZONE)
            if ends_at.strip() else None,
            max_uses=parse_int(max_uses, "max_uses", low=1, high=10_000_000)
            if max_uses.strip() else None,
            max_uses_per_customer=parse_int(max_uses_per_customer, "max_uses_per_customer",
                                            low=1, high=10_000)
            if max_uses_per_customer.strip() else None,
            stacking=parse_choice(stacking or "with-member-price", Stacking, "stacking"))
        with services.db.transaction() as session:
            try:
                created = service.create_code(session, clock=services.clock, spec=spec)
            except DomainError as exc:
                raise from_domain(exc) from None
            text = created.code
    except FormError as error:
        return _new_page(request, viewer, services, values=values, error=error)
    return done(PATH, f"Code {text} created.")


@router.get(PATH + "/{code_id}/withdraw", response_class=HTMLResponse)
def confirm_withdraw(request: Request, code_id: IdPath, viewer: Manager,
                     services: ServicesDep) -> HTMLResponse:
    with services.db.transaction() as session:
        code = service.get_code(session, code_id)
    return render(request, "discounts/withdraw.html", viewer, code=code)


@router.post(PATH + "/{code_id}/withdraw", response_class=HTMLResponse)
def withdraw(request: Request, code_id: IdPath, viewer: Manager, services: ServicesDep,
             confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    if confirm != "yes":  # only the confirmation page's button withdraws
        return RedirectResponse(request.url.path, status_code=303)
    with services.db.transaction() as session:
        code = service.disable_code(session, clock=services.clock, code_id=code_id)
        text = code.code
    return done(PATH, f"Code {text} withdrawn: no new checkout can use it.")
