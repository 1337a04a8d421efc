"""Sign in, sign up, sign out, the account page (orders, link to the membership portal, news of
drops by mail: yes or no), and password change and reset. Plain forms; the session cookie is
the same one the JSON API sets. A refused field is shown beside that field (``field`` in the template context)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from dropline.customers import flows
from dropline.customers import service as customers
from dropline.customers.api import (
    RESET_ANSWER,
    _set_session_cookie,
    acquisition_from_cookie,
    mail_context,
)
from dropline.customers.schemas import CustomerCreate, PasswordResetRequest
from dropline.errors import DomainError
from dropline.memberships import perks
from dropline.notifications import service as mail
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


def _auth_page(request: Request, services: ServicesDep, name: str, *, next_path: str = "",
               error: str = "", field: str = "", status_code: int = 200,
               **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {
        "shop_name": services.settings.shop.name, "next": safe_next(next_path),
        "error": error, "field": field, "email": "", **context}, status_code=status_code)
    private_response(response)
    return response


def _refused(request: Request, services: Services, template: str, exc: DomainError,
             **context: Any) -> HTMLResponse:
    """The form again, the refusal beside the field it names (or above the form)."""
    return _auth_page(request, services, template, error=exc.detail,
                      field=str(exc.extensions.get("field", "")), status_code=exc.status,
                      **context)


def _invalid(exc: ValidationError) -> tuple[str, str]:
    """(field, message) of a form's first invalid field, worded for a person."""
    first = exc.errors()[0]
    field = ".".join(map(str, first["loc"]))
    return field, f"{first['msg']}."


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
    """Finds the customer and starts their session in one transaction, then redirects with
    the cookie set; a refusal re-renders the form with the reason."""
    try:
        with services.db.transaction() as session:
            customer = customer_of(session)
            token = customers.start_session(session, clock=services.clock, customer=customer,
                                            days=services.settings.web.session_days)
    except DomainError as exc:
        return _refused(request, services, template, exc, next_path=next_path, email=email)
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
    """The same answer (a redirect to the "check your email" page, no cookie) whether or not
    the address had an account: a new address is mailed the link that creates the account,
    the owner of a taken one a note (``customers.flows.sign_up``)."""
    try:
        body = CustomerCreate(email=email, password=password, name=name)
    except ValidationError as exc:
        field, why = _invalid(exc)
        return _auth_page(request, services, "sign_up.html", next_path=next, email=email,
                          error=why, field=field, status_code=422)
    source, campaign = acquisition_from_cookie(request)
    try:
        flows.sign_up(
            services.db, clock=services.clock, mail=mail_context(services, request),
            email=body.email, password=body.password, name=body.name,
            acquisition_source=source or "direct", acquisition_campaign=campaign,
            lifetime=timedelta(minutes=services.settings.web.sign_up_link_minutes),
            next_path=safe_next(next))
    except DomainError as exc:
        return _refused(request, services, "sign_up.html", exc, next_path=next, email=email)
    return RedirectResponse("/sign-up/sent", status_code=303)


@router.get("/sign-up/sent")
def sign_up_sent_page(request: Request, services: ServicesDep) -> Response:
    return _auth_page(request, services, "sign_up_sent.html")


@router.get("/sign-up/confirm")
def confirm_sign_up_page(request: Request, services: ServicesDep,
                         token: Annotated[str, Query(max_length=200)] = "",
                         next: Next = "/account") -> Response:
    """The emailed link's page: a button that creates the account. The GET changes nothing,
    so a mail scanner opening the link does not spend it."""
    return _auth_page(request, services, "sign_up_confirm.html", next_path=next, token=token)


@router.post("/sign-up/confirm")
def confirm_sign_up(request: Request, services: ServicesDep, token: Short,
                    next: Short = "/account") -> Response:
    try:
        _, session_token = flows.confirm_sign_up(
            services.db, clock=services.clock, token=token,
            session_days=services.settings.web.session_days)
    except DomainError as exc:
        return _refused(request, services, "sign_up_confirm.html", exc, next_path=next,
                        token=token)
    response = RedirectResponse(safe_next(next), status_code=303)
    _set_session_cookie(response, services.settings, session_token)
    return response


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
        subscribed = mail.is_subscribed(session, customer_id=customer.id)
    response = templates.TemplateResponse(request, "account.html", {
        "shop_name": services.settings.shop.name, "person": person, "orders": recent,
        "tier": tier, "subscribed": subscribed})
    private_response(response)
    return response


@router.get("/account/password")
def change_password_page(request: Request, services: ServicesDep,
                         customer: OptionalCustomer) -> Response:
    if customer is None:
        return RedirectResponse("/sign-in?next=/account/password", status_code=303)
    return _auth_page(request, services, "change_password.html")


@router.post("/account/password")
def change_password(request: Request, services: ServicesDep, customer: OptionalCustomer,
                    current_password: Short, new_password: Short) -> Response:
    if customer is None:
        return RedirectResponse("/sign-in?next=/account/password", status_code=303)
    try:
        with services.db.transaction() as session:
            customers.change_password(
                session, clock=services.clock, customer_id=customer.id,
                current_password=current_password, new_password=new_password,
                current_token=request.cookies.get(services.settings.web.session_cookie_name))
    except DomainError as exc:
        return _refused(request, services, "change_password.html", exc)
    return _auth_page(request, services, "change_password.html",
                      message="Your password is changed; your other sessions are signed out.")


@router.get("/forgot-password")
def forgot_password_page(request: Request, services: ServicesDep) -> Response:
    return _auth_page(request, services, "forgot_password.html")


@router.post("/forgot-password")
def forgot_password(request: Request, services: ServicesDep, email: Short) -> Response:
    try:
        body = PasswordResetRequest(email=email)
    except ValidationError:
        return _auth_page(request, services, "forgot_password.html", email=email,
                          error="Enter the email address of your account.", field="email",
                          status_code=422)
    flows.request_password_reset(
        services.db, clock=services.clock, mail=mail_context(services, request),
        email=body.email,
        lifetime=timedelta(minutes=services.settings.web.password_reset_minutes))
    return _auth_page(request, services, "forgot_password.html", message=RESET_ANSWER)


@router.get("/reset-password")
def reset_password_page(request: Request, services: ServicesDep,
                        token: Annotated[str, Query(max_length=200)] = "") -> Response:
    return _auth_page(request, services, "reset_password.html", token=token)


@router.post("/reset-password")
def reset_password(request: Request, services: ServicesDep, token: Short,
                   new_password: Short) -> Response:
    try:
        with services.db.transaction() as session:
            customers.reset_password(session, clock=services.clock, token=token,
                                     new_password=new_password)
    except DomainError as exc:
        return _refused(request, services, "reset_password.html", exc, token=token)
    return _auth_page(request, services, "sign_in.html", next_path="/account",
                      message="Your password is set. Sign in with it.")
