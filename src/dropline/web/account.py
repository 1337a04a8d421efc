"""Sign in, sign up, sign out and the account page (orders, link to the membership portal).
Plain forms; the session cookie is the same one the JSON API sets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from dropline.customers import service as customers
from dropline.customers.api import _set_session_cookie, acquisition_from_cookie
from dropline.customers.schemas import CustomerCreate
from dropline.errors import DomainError
from dropline.memberships import perks
from dropline.orders import service as orders
from dropline.web.caching import private_response
from dropline.web.deps import OptionalCustomer, Services, ServicesDep
from dropline.web.templating import templates

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=200)]
Next = Annotated[str, Query(max_length=200)]


def safe_next(path: str) -> str:
    """Only a local path (no scheme, no ``//host``): an open redirect is a phishing aid."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path \
        else "/account"


def _auth_page(request: Request, services: ServicesDep, name: str, *, next_path: str,
               error: str = "", email: str = "", status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {
        "shop_name": services.settings.shop.name, "next": safe_next(next_path),
        "error": error, "email": email}, status_code=status_code)
    private_response(response)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request, services: ServicesDep, next: Next = "/account") -> Response:
    return _auth_page(request, services, "sign_in.html", next_path=next)


@router.post("/sign-in")
def sign_in(request: Request, services: ServicesDep, email: Short, password: Short,
            next: Short = "/account") -> Response:
    return _start_session(request, services, "sign_in.html", next_path=next, email=email,
                          customer_of=lambda session: customers.authenticate_customer(
                              session, email=email, password=password))


def _start_session(request: Request, services: Services, template: str, *, next_path: str,
                   email: str, customer_of: Callable[[Session], Any]) -> Response:
    """Finds (or creates) the customer and starts their session in one transaction, then
    redirects with the cookie set; a refusal re-renders the form with the reason."""
    try:
        with services.db.transaction() as session:
            customer = customer_of(session)
            token = customers.start_session(session, clock=services.clock, customer=customer,
                                            days=services.settings.web.session_days)
    except DomainError as exc:
        return _auth_page(request, services, template, next_path=next_path, email=email,
                          error=exc.detail, status_code=exc.status)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    _set_session_cookie(response, services.settings, token)
    return response


@router.get("/sign-up")
def sign_up_page(request: Request, services: ServicesDep, next: Next = "/account") -> Response:
    return _auth_page(request, services, "sign_up.html", next_path=next)


@router.post("/sign-up")
def sign_up(request: Request, services: ServicesDep, email: Short,
            password: Annotated[str, Form(max_length=200)], name: Short = "",
            next: Short = "/account") -> Response:
    try:
        body = CustomerCreate(email=email, password=password, name=name)
    except ValidationError as exc:
        why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _auth_page(request, services, "sign_up.html", next_path=next, email=email,
                          error=why, status_code=422)
    source, campaign = acquisition_from_cookie(request)
    return _start_session(request, services, "sign_up.html", next_path=next, email=email,
                          customer_of=lambda session: customers.register_customer(
                              session, clock=services.clock, email=body.email,
                              password=body.password, name=body.name,
                              acquisition_source=source or "direct",
                              acquisition_campaign=campaign))


@router.post("/sign-out")
def sign_out(request: Request, services: ServicesDep) -> Response:
    token = request.cookies.get(services.settings.web.session_cookie_name)
    if token:
        with services.db.transaction() as session:
            customers.end_session(session, clock=services.clock, token=token[:200])
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(services.settings.web.session_cookie_name, path="/")
    return response


@router.get("/account")
def account(request: Request, services: ServicesDep, customer: OptionalCustomer) -> Response:
    if customer is None:
        return RedirectResponse("/sign-in?next=/account", status_code=303)
    with services.db.transaction() as session:
        person = customers.get_customer(session, customer.id)
        recent = orders.list_orders(session, customer_id=customer.id, limit=20)
        tier = perks.active_tier(session, customer_id=customer.id, at=services.clock.now())
    response = templates.TemplateResponse(request, "account.html", {
        "shop_name": services.settings.shop.name, "person": person, "orders": recent,
        "tier": tier})
    private_response(response)
    return response
