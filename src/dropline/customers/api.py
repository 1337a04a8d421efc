from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from dropline.customers import flows, service
from dropline.customers.schemas import (
    CAMPAIGN_MAX_LENGTH,
    SOURCE_PATTERN,
    CustomerCreate,
    CustomerRead,
    PasswordChange,
    PasswordResetAccepted,
    PasswordResetComplete,
    PasswordResetRequest,
    SessionCreate,
    SignUpAccepted,
    SignUpConfirm,
)
from dropline.schemas import IdPath
from dropline.services import Services
from dropline.web.deps import (
    ClockDep,
    CustomerDep,
    Principal,
    ServicesDep,
    SessionDep,
    SettingsDep,
    admin,
)

router = APIRouter(tags=["customers"])
ACQUISITION_COOKIE = "dl_acq"
SIGN_UP_ANSWER = ("Thanks. We have emailed this address: open the link in that email to "
                  "finish creating your account (if the address already has one, the email "
                  "says how to sign in instead).")
RESET_ANSWER = ("If an account uses this address, we have emailed it a link to choose a new "
                "password.")


def _set_session_cookie(response: Response, settings: SettingsDep, token: str) -> None:
    response.set_cookie(
        settings.web.session_cookie_name, token, max_age=settings.web.session_days * 86400,
        httponly=True, samesite="lax", secure=settings.web.cookie_secure, path="/",
    )


def acquisition_cookie_value(source: str, campaign: str) -> str | None:
    """The cookie that remembers a storefront link's ``utm_source`` and ``utm_campaign``, or
    None when the source is not one sign-up would accept (``SOURCE_PATTERN``). A campaign
    with control characters is dropped, the source kept."""
    if not re.fullmatch(SOURCE_PATTERN, source):
        return None
    campaign = campaign[:CAMPAIGN_MAX_LENGTH]
    return f"{source}|{campaign if campaign.isprintable() else ''}"


def acquisition_from_cookie(request: Request) -> tuple[str, str]:
    """The remembered source and campaign, held to the rules sign-up holds a sent source to:
    the cookie is the browser's to edit, so it is checked again here."""
    source, _, campaign = request.cookies.get(ACQUISITION_COOKIE, "").partition("|")
    if acquisition_cookie_value(source, campaign) is None:
        return "", ""
    campaign = campaign[:CAMPAIGN_MAX_LENGTH]
    return source, campaign if campaign.isprintable() else ""


def mail_context(services: Services, request: Request) -> flows.MailContext:
    """Account emails link to the configured public address, else to the request's."""
    return flows.MailContext(sender=services.mailer, shop_name=services.settings.shop.name,
                             base_url=services.settings.web.public_url or str(request.base_url))


@router.post("/customers", response_model=SignUpAccepted, status_code=status.HTTP_202_ACCEPTED,
             summary="Sign up (the emailed link creates the account)",
             description="The answer (status, body, headers: no cookie) is the same whether or "
                         "not the address already has an account, so sign-up tells no one "
                         "which addresses have accounts. A new address is emailed a single-use "
                         "link whose token `POST /customers/confirmations` spends to create "
                         "the account and sign it in; the owner of a taken address is emailed "
                         "a note instead.")
def register(body: CustomerCreate, request: Request, services: ServicesDep) -> SignUpAccepted:
    cookie_source, cookie_campaign = acquisition_from_cookie(request)
    flows.sign_up(
        services.db, clock=services.clock, mail=mail_context(services, request),
        email=body.email, password=body.password, name=body.name,
        acquisition_source=body.acquisition_source or cookie_source or "direct",
        acquisition_campaign=body.acquisition_campaign or cookie_campaign,
        lifetime=timedelta(minutes=services.settings.web.sign_up_link_minutes))
    return SignUpAccepted(detail=SIGN_UP_ANSWER)


@router.post("/customers/confirmations", response_model=CustomerRead,
             status_code=status.HTTP_201_CREATED,
             summary="Create the account of an emailed sign-up link (and sign in)",
             description="The link works once and expires. Sets the session cookie.",
             responses={409: {"description": "The address got an account meanwhile"}})
def confirm_sign_up(body: SignUpConfirm, response: Response, services: ServicesDep
                    ) -> CustomerRead:
    customer_id, token = flows.confirm_sign_up(
        services.db, clock=services.clock, token=body.token,
        session_days=services.settings.web.session_days)
    _set_session_cookie(response, services.settings, token)
    with services.db.transaction() as session:
        return CustomerRead.model_validate(service.get_customer(session, customer_id))


@router.post("/sessions", response_model=CustomerRead, summary="Sign in (sets a cookie)",
             responses={401: {"description": "Unknown email or wrong password"}})
def login(body: SessionCreate, response: Response, session: SessionDep, clock: ClockDep,
          settings: SettingsDep) -> CustomerRead:
    customer = service.authenticate_customer(session, email=body.email, password=body.password)
    token = service.start_session(session, clock=clock, customer=customer,
                                  days=settings.web.session_days)
    _set_session_cookie(response, settings, token)
    return CustomerRead.model_validate(customer)


@router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT,
               summary="Sign out")
def logout(request: Request, response: Response, session: SessionDep, clock: ClockDep,
           settings: SettingsDep) -> None:
    token = request.cookies.get(settings.web.session_cookie_name)
    if token:
        service.end_session(session, clock=clock, token=token[:200])
    response.delete_cookie(settings.web.session_cookie_name, path="/")


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT,
             summary="Change the password (the current one required)",
             description="Ends the customer's other sessions; this one stays signed in.")
def change_password(body: PasswordChange, request: Request, principal: CustomerDep,
                    session: SessionDep, clock: ClockDep, settings: SettingsDep) -> None:
    service.change_password(session, clock=clock, customer_id=principal.id,
                            current_password=body.current_password,
                            new_password=body.new_password,
                            current_token=request.cookies.get(settings.web.session_cookie_name))


@router.post("/password-resets", response_model=PasswordResetAccepted,
             status_code=status.HTTP_202_ACCEPTED, summary="Email a password-reset link",
             description="Answers the same whether or not the address has an account.")
def request_reset(body: PasswordResetRequest, request: Request,
                  services: ServicesDep) -> PasswordResetAccepted:
    flows.request_password_reset(
        services.db, clock=services.clock, mail=mail_context(services, request),
        email=body.email,
        lifetime=timedelta(minutes=services.settings.web.password_reset_minutes))
    return PasswordResetAccepted(detail=RESET_ANSWER)


@router.post("/password-resets/complete", status_code=status.HTTP_204_NO_CONTENT,
             summary="Choose a new password with an emailed reset token",
             description="The token works once and expires; using it spends the account's "
                         "other reset links and ends all its sessions. Sign in afterwards.")
def complete_reset(body: PasswordResetComplete, session: SessionDep, clock: ClockDep) -> None:
    service.reset_password(session, clock=clock, token=body.token,
                           new_password=body.new_password)


@router.get("/me", response_model=CustomerRead, summary="The signed-in customer")
def me(principal: CustomerDep, session: SessionDep) -> CustomerRead:
    return CustomerRead.model_validate(service.get_customer(session, principal.id))


@router.get("/admin/customers", response_model=list[CustomerRead], tags=["admin"],
            summary="List customers")
def list_customers(
    session: SessionDep, _: Annotated[Principal, admin("customers:read")],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[CustomerRead]:
    return [CustomerRead.model_validate(c)
            for c in service.list_customers(session, limit=limit, offset=offset)]


@router.get("/admin/customers/{customer_id}", response_model=CustomerRead, tags=["admin"],
            summary="One customer")
def get_customer(customer_id: IdPath, session: SessionDep,
                 _: Annotated[Principal, admin("customers:read")]) -> CustomerRead:
    return CustomerRead.model_validate(service.get_customer(session, customer_id))
