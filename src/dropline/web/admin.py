"""The admin console's shell: browser login for admin users, the page dependency that guards
every console page, the shared layout and its navigation.

A domain adds a console page with a router whose endpoints depend on ``AdminPageUser`` and
render a template extending ``admin/base.html``, and exports its navigation entries as data
(``NAV_ITEMS``); the composition root includes the router and registers the entries
(``web.navigation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dropline.admin.service import (
    admin_for_session,
    authenticate_admin,
    end_admin_session,
    start_admin_session,
)
from dropline.audit import set_actor
from dropline.console.figures import overview as console_overview
from dropline.console.overview import shop_overview
from dropline.errors import NotAuthenticated
from dropline.web.deps import ServicesDep, SessionDep
from dropline.web.templating import templates

ADMIN_COOKIE = "dl_admin"


@dataclass(frozen=True)
class AdminViewer:
    id: int
    email: str
    name: str


class LoginRequired(Exception):
    """Raised by the page dependency; rendered as a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def current_admin(request: Request, services: ServicesDep) -> AdminViewer:
    token = request.cookies.get(ADMIN_COOKIE, "")[:200]
    if token:
        with services.db.transaction() as session:
            user = admin_for_session(session, clock=services.clock, token=token)
            if user is not None:
                set_actor(f"admin:{user.id}")  # the audit trail's actor (audit.actor)
                return AdminViewer(user.id, user.email, user.name)
    raise LoginRequired(request.url.path)


AdminPageUser = Annotated[AdminViewer, Depends(current_admin)]


def render(request: Request, template: str, viewer: AdminViewer, status_code: int = 200,
           **context: object) -> HTMLResponse:
    """Render a console page with the layout's navigation and no caching (private data)."""
    response = templates.TemplateResponse(request, template, {
        "nav": request.app.state.navigation, "viewer": viewer, "current": request.url.path,
        "shop_name": request.app.state.services.settings.shop.name, **context,
    }, status_code=status_code)
    response.headers["Cache-Control"] = "private, no-store"
    return response


router = APIRouter(prefix="/admin", include_in_schema=False)


def _safe_next(next_path: str) -> str:
    # Only same-site console paths: never an open redirect.
    return next_path if next_path.startswith("/admin") and "//" not in next_path else "/admin"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/admin") -> HTMLResponse:
    response = templates.TemplateResponse(request, "admin/login.html", {
        "next": _safe_next(next[:300]), "error": None,
        "shop_name": request.app.state.services.settings.shop.name})
    response.headers["Cache-Control"] = "no-store"
    return response


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
        response = templates.TemplateResponse(request, "admin/login.html", {
            "next": _safe_next(next), "error": "Wrong email or password.",
            "shop_name": services.settings.shop.name}, status_code=401)
        response.headers["Cache-Control"] = "no-store"
        return response
    token = start_admin_session(session, clock=services.clock, user=user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(ADMIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=services.settings.web.cookie_secure, path="/admin")
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, services: ServicesDep) -> Response:
    token = request.cookies.get(ADMIN_COOKIE, "")[:200]
    if token:
        end_admin_session(session, clock=services.clock, token=token)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(ADMIN_COOKIE, path="/admin")
    return response


@router.get("", response_class=HTMLResponse)
def overview(request: Request, viewer: AdminPageUser, session: SessionDep,
             services: ServicesDep) -> HTMLResponse:
    currency = services.settings.shop.currency
    return render(request, "admin/overview.html", viewer, overview=shop_overview(
        session, currency=currency), today=console_overview(
        session, clock=services.clock, currency=currency))


def login_redirect(request: Request, exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/admin/login?next={quote(_safe_next(exc.next_path))}",
                            status_code=303)
