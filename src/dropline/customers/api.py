from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from dropline.customers import service
from dropline.customers.schemas import (
    CAMPAIGN_MAX_LENGTH,
    SOURCE_PATTERN,
    CustomerCreate,
    CustomerRead,
    SessionCreate,
)
from dropline.schemas import IdPath
from dropline.web.deps import (
    ClockDep,
    CustomerDep,
    Principal,
    SessionDep,
    SettingsDep,
    admin,
)

router = APIRouter(tags=["customers"])
ACQUISITION_COOKIE = "dl_acq"


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


@router.post("/customers", response_model=CustomerRead, status_code=status.HTTP_201_CREATED,
             summary="Sign up (and sign in)")
def register(body: CustomerCreate, request: Request, response: Response, session: SessionDep,
             clock: ClockDep, settings: SettingsDep) -> CustomerRead:
    cookie_source, cookie_campaign = acquisition_from_cookie(request)
    customer = service.register_customer(
        session, clock=clock, email=body.email, password=body.password, name=body.name,
        acquisition_source=body.acquisition_source or cookie_source or "direct",
        acquisition_campaign=body.acquisition_campaign or cookie_campaign,
    )
    token = service.start_session(session, clock=clock, customer=customer,
                                  days=settings.web.session_days)
    _set_session_cookie(response, settings, token)
    return CustomerRead.model_validate(customer)


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
