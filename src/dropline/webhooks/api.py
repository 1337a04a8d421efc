from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import Field

from dropline.schemas import IdPath, Input, Output
from dropline.web.deps import ClockDep, Principal, SessionDep, SettingsDep, admin
from dropline.webhooks import service
from dropline.webhooks.models import DeliveryStatus
from dropline.webhooks.targets import TargetPolicy

router = APIRouter(prefix="/admin/webhooks", tags=["webhooks"])
Manager = Annotated[Principal, admin("webhooks:manage")]


class EndpointCreate(Input):
    url: str = Field(min_length=8, max_length=2048, examples=["https://example.com/hooks"])
    event_types: list[Annotated[str, Field(min_length=1, max_length=64,
                                           pattern=r"^(\*|[a-z_]+\.(\*|[a-z_]+))$")]] = Field(
        default=["*"], min_length=1, max_length=50,
        description='e.g. ["order.paid", "order.*"]; "*" for all')
    description: str = Field("", max_length=200)


class EndpointRead(Output):
    id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime


class EndpointCreated(EndpointRead):
    secret: str = Field(description="HMAC secret for the webhook-signature header; shown once")


class DeliveryRead(Output):
    id: int
    endpoint_id: int
    event_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


@router.post("", response_model=EndpointCreated, status_code=status.HTTP_201_CREATED,
             summary="Register a webhook endpoint")
def create(body: EndpointCreate, session: SessionDep, clock: ClockDep, settings: SettingsDep,
           _: Manager) -> EndpointCreated:
    endpoint = service.create_endpoint(session, clock=clock, url=body.url,
                                       event_types=body.event_types, description=body.description,
                                       targets=TargetPolicy.from_settings(settings.webhooks))
    return EndpointCreated(**EndpointRead.model_validate(endpoint).model_dump(),
                           secret=endpoint.secret)


@router.get("", response_model=list[EndpointRead], summary="List webhook endpoints")
def list_all(session: SessionDep, _: Manager) -> list[EndpointRead]:
    return [EndpointRead.model_validate(e) for e in service.list_endpoints(session)]


@router.delete("/{endpoint_id}", response_model=EndpointRead, summary="Deactivate an endpoint")
def deactivate(endpoint_id: IdPath, session: SessionDep, _: Manager) -> EndpointRead:
    return EndpointRead.model_validate(service.deactivate_endpoint(session, endpoint_id))


@router.get("/{endpoint_id}/deliveries", response_model=list[DeliveryRead],
            summary="Recent deliveries to an endpoint")
def deliveries(endpoint_id: IdPath, session: SessionDep, _: Manager,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[DeliveryRead]:
    service.get_endpoint(session, endpoint_id)
    return [DeliveryRead.model_validate(d)
            for d in service.list_deliveries(session, endpoint_id=endpoint_id, limit=limit)]
