"""The admin console's shell: browser login for admin users (password, then a TOTP code once
the user has enrolled one), the page dependency that guards every console page, the staff
member's security page (TOTP enrolment), the shared layout and its navigation.

A domain adds a console page with a router whose endpoints declare the permission they need
with ``staff_with(scope)`` (a scope of ``admin.service.SCOPES``, or ``ANY_STAFF``) and render a
template extending ``admin/base.html``, and exports its navigation entries as data
(``NAV_ITEMS``, each with its scope); the composition root includes the router and registers
the entries (``web.navigation``). A staff member's scopes are their role's
(``admin.roles``); the navigation lists only the entries the viewer may open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from dropline.admin import flows as staff_flows
from dropline.admin import passwords as staff_passwords
from dropline.admin.models import AdminUser
from dropline.admin.roles import ROLE_LABELS, Role, scopes_of
from dropline.admin.service import (
    admin_awaiting_code,
    admin_for_session,
    authenticate_admin,
    begin_totp,
    complete_second_factor,
    confirm_totp,
    end_admin_session,
    recovery_codes_left,
    start_admin_session,
    totp_secret,
    totp_uri,
)
from dropline.audit import set_actor
from dropline.console.figures import overview as console_overview
from dropline.console.overview import shop_overview
from dropline.customers.api import mail_context
from dropline.customers.schemas import PasswordResetRequest
from dropline.errors import DomainError, NotAuthenticated, PermissionDenied
from dropline.reconciliation import open_discrepancies
from dropline.services import Services
from dropline.web.deps import ServicesDep, SessionDep
from dropline.web.templating import templates

ADMIN_COOKIE = "dl_admin"


@dataclass(frozen=True)
class AdminViewer:
    id: int
    email: str
    name: str
    # The staff member's permissions (``admin.service.SCOPES`` names; ``*`` is every one).
    scopes: frozenset[str] = frozenset({"*"})
    role: str = Role.owner.value

    def may(self, scope: str | None) -> bool:
        return scope is None or "*" in self.scopes or scope in self.scopes

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[Role(self.role)]


def viewer_of(user: AdminUser) -> AdminViewer:
    return AdminViewer(user.id, user.email, user.name, scopes=scopes_of(user.role),
                       role=user.role)


class LoginRequired(Exception):
    """Raised by the page dependency; rendered as a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def signed_in_admin(session: Session, services: Services, token: str) -> AdminUser | None:
    """The admin of a console session cookie: fully signed in and not idle."""
    return admin_for_session(session, clock=services.clock, token=token,
                             idle_minutes=services.settings.web.console_idle_minutes)


def pending_staff_id(request: Request, services: Services) -> int | None:
    """The admin whose password was accepted and whose code this browser owes (the code
    throttle's account)."""
    token = request.cookies.get(ADMIN_COOKIE, "")[:200]
    if not token:
        return None
    with services.db.transaction() as session:
        user = admin_awaiting_code(session, clock=services.clock, token=token)
        return user.id if user is not None else None


def current_admin(request: Request, services: ServicesDep) -> AdminViewer:
    token = request.cookies.get(ADMIN_COOKIE, "")[:200]
    if token:
        with services.db.transaction() as session:
            user = signed_in_admin(session, services, token)
            if user is not None:
                set_actor(f"admin:{user.id}")  # the audit trail's actor (audit.actor)
                return viewer_of(user)
    raise LoginRequired(request.url.path)


AdminPageUser = Annotated[AdminViewer, Depends(current_admin)]


# The declared scope of a page any signed-in staff member may open (the overview, their own
# security page).
ANY_STAFF: str | None = None


def staff_with(scope: str | None) -> Any:
    """A page or form dependency: the signed-in staff member, who must hold ``scope``
    (403 otherwise; ``ANY_STAFF``: any member). ``Annotated[AdminViewer,
    staff_with("orders:fulfil")]``. The scope is kept on the dependency
    (``console_scope``) so the role tests read every route's from the app's router."""

    def dependency(viewer: AdminPageUser) -> AdminViewer:
        if not viewer.may(scope):
            raise PermissionDenied(f"your role does not allow this ({scope}); ask the "
                                   "shop's owner", scope=scope)
        return viewer

    dependency.console_scope = scope  # type: ignore[attr-defined]
    dependency.__name__ = f"staff_with_{(scope or 'any').replace(':', '_')}"
    return Depends(dependency)


def console_scope_of(call: Any) -> tuple[bool, str | None]:
    """(declared, scope) of a dependency callable made by ``staff_with``."""
    return (hasattr(call, "console_scope"), getattr(call, "console_scope", None))


AnyStaff = Annotated[AdminViewer, staff_with(ANY_STAFF)]


def render(request: Request, template: str, viewer: AdminViewer, status_code: int = 200,
           **context: object) -> HTMLResponse:
    """Render a console page with the layout's navigation and no caching (private data)."""
    nav = [item for item in request.app.state.navigation if viewer.may(item.scope)]
    response = templates.TemplateResponse(request, template, {
        "nav": nav, "viewer": viewer, "current": request.url.path,
        "shop_name": request.app.state.services.settings.shop.name, **context,
    }, status_code=status_code)
    response.headers["Cache-Control"] = "private, no-store"
    return response


PAGE_SIZE = 25


@dataclass(frozen=True)
class Pager:
    """A console table's page: ``?page=N`` (1-based); one more row than shown is read to know
    whether a next page exists (``admin/_pager.html`` draws the links)."""

    page: int
    size: int = PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def limit(self) -> int:
        return self.size + 1

    def cut(self, rows: list[Any]) -> tuple[list[Any], bool]:
        return rows[:self.size], len(rows) > self.size


PageNumber = Annotated[int, Query(ge=1, le=100_000)]


def confirm_page(request: Request, viewer: AdminViewer, *, title: str, question: str,
                 action: str, fields: dict[str, str], button: str,
                 back: str) -> HTMLResponse:
    """The confirmation of a destructive console action: the same form again, with
    ``confirm=yes`` (works without JavaScript)."""
    return render(request, "admin/confirm.html", viewer, title=title, question=question,
                  action=action, fields=fields, button=button, back=back)


router = APIRouter(prefix="/admin", include_in_schema=False)


def _safe_next(next_path: str) -> str:
    # Only same-site console paths: never an open redirect.
    return next_path if next_path.startswith("/admin") and "//" not in next_path else "/admin"


def _login_page(request: Request, services: Services, template: str, *, next_path: str,
                error: str | None = None, status_code: int = 200,
                **context: object) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, {
        "next": _safe_next(next_path), "error": error,
        "shop_name": services.settings.shop.name, **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _with_session(target: str, token: str, services: Services) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(ADMIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=services.settings.web.cookie_secure, path="/admin")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, services: ServicesDep, next: str = "/admin") -> HTMLResponse:
    return _login_page(request, services, "admin/login.html", next_path=next[:300])


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, session: SessionDep, services: ServicesDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=300)] = "/admin",
) -> Response:
    try:
        user = authenticate_admin(session, email=email, password=password)
    except NotAuthenticated:
        return _login_page(request, services, "admin/login.html", next_path=next,
                           error="Wrong email or password.", status_code=401)
    token = start_admin_session(session, clock=services.clock, user=user)
    if user.totp_confirmed_at is not None:
        return _with_session(f"/admin/login/code?next={quote(_safe_next(next))}", token,
                             services)
    return _with_session(_safe_next(next), token, services)


@router.get("/login/code", response_class=HTMLResponse)
def code_form(request: Request, services: ServicesDep, next: str = "/admin") -> HTMLResponse:
    return _login_page(request, services, "admin/login_code.html", next_path=next[:300])


@router.post("/login/code", response_class=HTMLResponse)
def code(
    request: Request, services: ServicesDep,
    code: Annotated[str, Form(max_length=40)] = "",
    next: Annotated[str, Form(max_length=300)] = "/admin",
) -> Response:
    """The second step of a sign-in: a TOTP code or a recovery code (throttled per staff
    account: ``web.throttle``)."""
    try:
        with services.db.transaction() as session:
            token = complete_second_factor(session, clock=services.clock, code=code.strip(),
                                           token=request.cookies.get(ADMIN_COOKIE, "")[:200],
                                           secret_key=services.settings.web.secret_key)
    except NotAuthenticated as exc:
        if exc.extensions.get("field") != "code":  # the password step lapsed: start again
            return RedirectResponse(f"/admin/login?next={quote(_safe_next(next))}",
                                    status_code=303)
        return _login_page(request, services, "admin/login_code.html", next_path=next,
                           error="Wrong code.", status_code=401)
    return _with_session(_safe_next(next), token, services)


@router.post("/logout")
def logout(request: Request, session: SessionDep, services: ServicesDep) -> Response:
    token = request.cookies.get(ADMIN_COOKIE, "")[:200]
    if token:
        end_admin_session(session, clock=services.clock, token=token)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(ADMIN_COOKIE, path="/admin")
    return response


@router.get("", response_class=HTMLResponse)
def overview(request: Request, viewer: AnyStaff, session: SessionDep,
             services: ServicesDep) -> HTMLResponse:
    currency = services.settings.shop.currency
    return render(request, "admin/overview.html", viewer, overview=shop_overview(
        session, currency=currency), today=console_overview(
        session, clock=services.clock, currency=currency),
        discrepancies=open_discrepancies(session))


STAFF_RESET_ANSWER = ("If this address belongs to a staff account, we have emailed it a link "
                      "to choose a new password.")


@router.get("/forgot-password", response_class=HTMLResponse)
def forgot_password_form(request: Request, services: ServicesDep) -> HTMLResponse:
    return _login_page(request, services, "admin/forgot_password.html", next_path="/admin")


@router.post("/forgot-password", response_class=HTMLResponse)
def forgot_password(request: Request, services: ServicesDep,
                    email: Annotated[str, Form(max_length=254)] = "") -> HTMLResponse:
    """Mails a reset link to a staff account; the answer is the same for any address."""
    try:
        address = PasswordResetRequest(email=email).email
    except ValidationError:
        return _login_page(request, services, "admin/forgot_password.html", next_path="/admin",
                           error="Enter the email address of your staff account.",
                           field="email", email=email, status_code=422)
    staff_flows.request_staff_password_reset(
        services.db, clock=services.clock, mail=mail_context(services, request), email=address,
        lifetime=timedelta(minutes=services.settings.web.password_reset_minutes))
    return _login_page(request, services, "admin/forgot_password.html", next_path="/admin",
                       message=STAFF_RESET_ANSWER)


@router.get("/reset-password", response_class=HTMLResponse)
def reset_password_form(request: Request, services: ServicesDep,
                        token: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    return _login_page(request, services, "admin/reset_password.html", next_path="/admin",
                       token=token)


@router.post("/reset-password", response_class=HTMLResponse)
def reset_password(request: Request, services: ServicesDep,
                   token: Annotated[str, Form(max_length=200)] = "",
                   new_password: Annotated[str, Form(max_length=200)] = "") -> HTMLResponse:
    try:
        with services.db.transaction() as session:
            staff_passwords.reset_staff_password(session, clock=services.clock, token=token,
                                                 new_password=new_password)
    except DomainError as exc:
        return _login_page(request, services, "admin/reset_password.html", next_path="/admin",
                           error=exc.detail, field=exc.extensions.get("field", ""),
                           token=token, status_code=exc.status)
    return _login_page(request, services, "admin/login.html", next_path="/admin",
                       message="Your password is set. Sign in with it.")


@router.post("/security/password", response_class=HTMLResponse)
def change_password(request: Request, viewer: AnyStaff, services: ServicesDep,
                    current_password: Annotated[str, Form(max_length=200)] = "",
                    new_password: Annotated[str, Form(max_length=200)] = "") -> HTMLResponse:
    """The signed-in staff member's new password; their other console sessions end."""
    try:
        with services.db.transaction() as session:
            staff_passwords.change_staff_password(
                session, clock=services.clock, user_id=viewer.id,
                current_password=current_password, new_password=new_password,
                current_token=request.cookies.get(ADMIN_COOKIE, "")[:200] or None)
    except DomainError as exc:
        page = _security_context(services, viewer)
        return render(request, "admin/security.html", viewer, status_code=exc.status,
                      password_error=exc.detail, field=exc.extensions.get("field", ""),
                      **page)
    return render(request, "admin/security.html", viewer,
                  password_message="Your password is changed; your other console sessions "
                                   "are signed out.", **_security_context(services, viewer))


def _security_context(services: Services, viewer: AdminViewer) -> dict[str, object]:
    with services.db.transaction() as session:
        user = session.get(AdminUser, viewer.id)
        assert user is not None
        return {"enrolled": user.totp_confirmed_at,
                "codes_left": recovery_codes_left(session, user_id=viewer.id)}


@router.get("/security", response_class=HTMLResponse)
def security_page(request: Request, viewer: AnyStaff, session: SessionDep,
                  services: ServicesDep) -> HTMLResponse:
    user = session.get(AdminUser, viewer.id)
    assert user is not None
    return render(request, "admin/security.html", viewer, enrolled=user.totp_confirmed_at,
                  codes_left=recovery_codes_left(session, user_id=viewer.id))


@router.post("/security/totp", response_class=HTMLResponse)
def start_totp(request: Request, viewer: AnyStaff, session: SessionDep,
               services: ServicesDep) -> HTMLResponse:
    """Shows a new secret and its otpauth:// URI; nothing changes at sign-in until a code
    from the device confirms it."""
    try:
        secret = begin_totp(session, user_id=viewer.id,
                            secret_key=services.settings.web.secret_key)
    except DomainError as exc:
        return render(request, "admin/security.html", viewer, status_code=exc.status,
                      error=exc.detail, enrolled=True, codes_left=None)
    user = session.get(AdminUser, viewer.id)
    assert user is not None
    return render(request, "admin/security.html", viewer, enrolled=None, secret=secret,
                  uri=totp_uri(user, issuer=services.settings.shop.name,
                               secret_key=services.settings.web.secret_key))


@router.post("/security/totp/confirm", response_class=HTMLResponse)
def confirm(request: Request, viewer: AnyStaff, services: ServicesDep,
            code: Annotated[str, Form(max_length=40)] = "") -> HTMLResponse:
    try:
        with services.db.transaction() as session:
            codes = confirm_totp(session, clock=services.clock, user_id=viewer.id, code=code,
                                 secret_key=services.settings.web.secret_key)
    except DomainError as exc:
        with services.db.transaction() as session:
            user = session.get(AdminUser, viewer.id)
            assert user is not None
            key = services.settings.web.secret_key
            secret = totp_secret(user, secret_key=key)
            uri = totp_uri(user, issuer=services.settings.shop.name, secret_key=key) \
                if secret else None
        return render(request, "admin/security.html", viewer, status_code=exc.status,
                      error=exc.detail, field=exc.extensions.get("field", ""), enrolled=None,
                      secret=secret, uri=uri)
    return render(request, "admin/security.html", viewer, enrolled=services.clock.now(),
                  recovery_codes=codes, codes_left=len(codes))


def login_redirect(request: Request, exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/admin/login?next={quote(_safe_next(exc.next_path))}",
                            status_code=303)
