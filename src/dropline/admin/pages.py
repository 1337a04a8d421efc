"""The console's Staff page (owners: ``staff:manage``): the staff list with roles, invitations
by email, role changes and deactivation (confirmed first); and every member's own API tokens
(``tokens:manage``), which can never exceed the member's role.

Forms post back to the page; a refusal re-renders it with the message beside the field and
the values kept (422/409), success redirects (303) with a one-line message."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dropline.admin import flows, service, staff
from dropline.admin.models import ApiToken
from dropline.admin.roles import ROLE_LABELS, ROLE_SCOPES, Role
from dropline.customers.api import mail_context
from dropline.errors import DomainError, InvalidInput
from dropline.schemas import IdPath
from dropline.web.admin import (
    AdminViewer,
    PageNumber,
    Pager,
    confirm_page,
    render,
    staff_with,
)
from dropline.web.deps import ServicesDep
from dropline.web.navigation import NavItem

PATH, TOKENS_PATH = "/admin/staff", "/admin/tokens"
NAV_ITEMS = (NavItem("Staff", PATH, "staff:manage"),
             NavItem("API tokens", TOKENS_PATH, "tokens:manage"))
router = APIRouter(include_in_schema=False)
StaffManager = Annotated[AdminViewer, staff_with("staff:manage")]
TokenManager = Annotated[AdminViewer, staff_with("tokens:manage")]
Message = Annotated[str, Query(max_length=200)]


def _staff_page(request: Request, services: ServicesDep, viewer: AdminViewer, *, page: int = 1,
                message: str = "", error: str = "", field: str = "",
                form: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    pager = Pager(page)
    with services.db.transaction() as session:
        members, has_next = pager.cut(staff.list_staff(session, limit=pager.limit,
                                                       offset=pager.offset))
        rows = [{"id": m.id, "email": m.email, "name": m.name, "role": m.role,
                 "role_label": ROLE_LABELS[Role(m.role)], "active": m.deactivated_at is None,
                 "invited": m.created_at} for m in members]
    return render(request, "staff/staff.html", viewer, status_code=status_code, rows=rows,
                  roles=[(r.value, ROLE_LABELS[r], _scope_summary(r)) for r in Role],
                  pager=pager, has_next=has_next, query="", message=message, error=error,
                  field=field, form=form or {"email": "", "name": "", "role": "packer"})


def _scope_summary(role: Role) -> str:
    held = ROLE_SCOPES[role]
    return "everything" if service.ALL_SCOPES in held else ", ".join(sorted(held))


@router.get(PATH, response_class=HTMLResponse)
def staff_page(request: Request, services: ServicesDep, viewer: StaffManager,
               page: PageNumber = 1, done: Message = "") -> HTMLResponse:
    return _staff_page(request, services, viewer, page=page, message=done)


@router.post(PATH + "/invite", response_class=HTMLResponse)
def invite(request: Request, services: ServicesDep, viewer: StaffManager,
           email: Annotated[str, Form(max_length=254)] = "",
           name: Annotated[str, Form(max_length=200)] = "",
           role: Annotated[str, Form(max_length=32)] = "") -> Response:
    try:
        flows.invite_staff(services.db, clock=services.clock,
                           mail=mail_context(services, request), email=email, role=role,
                           name=name)
    except DomainError as exc:
        return _staff_page(request, services, viewer, error=exc.detail,
                           field=exc.extensions.get("field", "email"), status_code=exc.status,
                           form={"email": email, "name": name, "role": role})
    return RedirectResponse(f"{PATH}?done={quote(f'Invitation sent to {email.strip()}')}",
                            status_code=303)


@router.post(PATH + "/{user_id}/role", response_class=HTMLResponse)
def set_role(user_id: IdPath, request: Request, services: ServicesDep, viewer: StaffManager,
             role: Annotated[str, Form(max_length=32)] = "") -> Response:
    try:
        with services.db.transaction() as session:
            user = staff.change_role(session, user_id=user_id, role=role)
            email, label = user.email, ROLE_LABELS[Role(user.role)]
    except DomainError as exc:
        return _staff_page(request, services, viewer, error=exc.detail, field=f"role-{user_id}",
                           status_code=exc.status)
    return RedirectResponse(f"{PATH}?done={quote(f'{email} is now {label.lower()}')}",
                            status_code=303)


@router.post(PATH + "/{user_id}/deactivate", response_class=HTMLResponse)
def deactivate(user_id: IdPath, request: Request, services: ServicesDep, viewer: StaffManager,
               confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    try:
        with services.db.transaction() as session:
            user = staff._staff(session, user_id)  # noqa: SLF001 - 404 before asking
            email = user.email
            if confirm == "yes":
                staff.deactivate_staff(session, clock=services.clock, user_id=user_id)
    except DomainError as exc:
        return _staff_page(request, services, viewer, error=exc.detail, field=f"role-{user_id}",
                           status_code=exc.status)
    if confirm != "yes":
        return confirm_page(request, viewer, title="Deactivate a staff member",
                            question=f"Deactivate {email}? They are signed out everywhere and "
                                     "their API tokens stop working. Their name stays in the "
                                     "audit trail.",
                            action=f"{PATH}/{user_id}/deactivate", fields={},
                            button="Deactivate", back=PATH)
    return RedirectResponse(f"{PATH}?done={quote(f'{email} is deactivated')}", status_code=303)


# ------------------------------------------------------------------ a member's own tokens

def _tokens_page(request: Request, services: ServicesDep, viewer: AdminViewer, *,
                 issued: str = "", error: str = "", field: str = "",
                 form: dict[str, Any] | None = None,
                 status_code: int = 200) -> HTMLResponse:
    with services.db.transaction() as session:
        mine = [t for t in service.list_tokens(session) if t.admin_user_id == viewer.id]
        rows = [{"id": t.id, "name": t.name, "prefix": t.prefix, "scopes": t.scopes,
                 "revoked": t.revoked_at is not None, "created_at": t.created_at}
                for t in mine]
    grantable = sorted(s for s in service.SCOPES if viewer.may(s))
    return render(request, "staff/tokens.html", viewer, status_code=status_code, rows=rows,
                  grantable=[(s, service.SCOPES[s]) for s in grantable], issued=issued,
                  error=error, field=field,
                  form=form or {"name": "", "scopes": []})


@router.get(TOKENS_PATH, response_class=HTMLResponse)
def tokens_page(request: Request, services: ServicesDep, viewer: TokenManager) -> HTMLResponse:
    return _tokens_page(request, services, viewer)


@router.post(TOKENS_PATH, response_class=HTMLResponse)
async def issue(request: Request, services: ServicesDep, viewer: TokenManager) -> Response:
    form = await request.form()
    name = str(form.get("name", ""))[:120].strip()
    scopes = [str(s)[:40] for s in form.getlist("scopes")][:40]
    kept = {"name": name, "scopes": scopes}
    try:
        if not name:
            raise InvalidInput("Name the token (what will use it).", field="name")
        checked = service.validate_scopes(scopes)
        # The member's role is the ceiling: ``*`` only for an owner.
        service.refuse_scope_escalation(checked, held=sorted(viewer.scopes))
        with services.db.transaction() as session:
            issued = service.issue_token(session, clock=services.clock, name=name,
                                         scopes=checked, admin_user_id=viewer.id)
            secret = issued.secret
    except DomainError as exc:
        return _tokens_page(request, services, viewer, error=exc.detail, form=kept,
                            field=exc.extensions.get("field", "scopes"), status_code=exc.status)
    return _tokens_page(request, services, viewer, issued=secret, status_code=201)


@router.post(TOKENS_PATH + "/{token_id}/revoke", response_class=HTMLResponse)
def revoke(token_id: IdPath, request: Request, services: ServicesDep,
           viewer: TokenManager) -> Response:
    with services.db.transaction() as session:
        token = session.get(ApiToken, token_id)
        if token is not None and token.admin_user_id == viewer.id:
            service.revoke_token(session, clock=services.clock, token_id=token_id)
    return RedirectResponse(TOKENS_PATH, status_code=303)
