from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import Field

from dropline.admin import service
from dropline.events.service import list_events
from dropline.schemas import IdPath, Input, Instant, Output
from dropline.web.deps import ClockDep, Principal, SessionDep, admin

router = APIRouter(prefix="/admin", tags=["admin"])
TokenManager = Annotated[Principal, admin("tokens:manage")]


class TokenCreate(Input):
    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(min_length=1, max_length=20)
    # A naive time has no meaning here (and the UTC column refuses it).
    expires_at: Instant | None = None


class TokenRead(Output):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class IssuedTokenRead(TokenRead):
    token: str = Field(description="shown once; store it now")


class EventRead(Output):
    id: int
    event_id: str
    type: str
    subject_type: str
    subject_id: str
    customer_id: int | None
    occurred_at: datetime
    payload: dict


@router.get("/scopes", summary="The scopes an API token can hold")
def scopes(_: TokenManager) -> dict[str, str]:
    return service.SCOPES


@router.post("/tokens", response_model=IssuedTokenRead, status_code=status.HTTP_201_CREATED,
             summary="Issue an API token")
def issue_token(body: TokenCreate, session: SessionDep, clock: ClockDep,
                caller: TokenManager) -> IssuedTokenRead:
    # ``caller.scopes`` are already capped by the role of the staff member behind the token,
    # whose the new token is too (so a later, lower role lowers it as well).
    service.refuse_scope_escalation(service.validate_scopes(body.scopes), held=caller.scopes)
    issued = service.issue_token(session, clock=clock, name=body.name, scopes=body.scopes,
                                 expires_at=body.expires_at, admin_user_id=caller.staff_id)
    return IssuedTokenRead(**TokenRead.model_validate(issued.token).model_dump(),
                           token=issued.secret)


@router.get("/tokens", response_model=list[TokenRead], summary="List API tokens")
def list_tokens(session: SessionDep, _: TokenManager) -> list[TokenRead]:
    return [TokenRead.model_validate(t) for t in service.list_tokens(session)]


@router.delete("/tokens/{token_id}", response_model=TokenRead, summary="Revoke an API token")
def revoke_token(token_id: IdPath, session: SessionDep, clock: ClockDep,
                 _: TokenManager) -> TokenRead:
    return TokenRead.model_validate(service.revoke_token(session, clock=clock, token_id=token_id))


@router.get("/events", response_model=list[EventRead], summary="The domain event log")
def events(
    session: SessionDep, _: Annotated[Principal, admin("events:read")],
    type: Annotated[str | None, Query(max_length=64)] = None,
    after_id: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventRead]:
    return [EventRead.model_validate(e)
            for e in list_events(session, type=type, after_id=after_id, limit=limit)]
