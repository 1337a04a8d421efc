"""Admin CRUD for discount codes (``discounts:manage``). Codes are used through
``discount_code`` on ``POST /api/v1/checkout`` and ``POST /api/v1/checkout/quote``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from dropline.discounts import service
from dropline.discounts.schemas import DiscountCreate, DiscountRead
from dropline.schemas import IdPath
from dropline.web.deps import ClockDep, Principal, SessionDep, admin

router = APIRouter(prefix="/admin/discounts", tags=["admin"])
Manager = Annotated[Principal, admin("discounts:manage")]
PROBLEM = {"content": {"application/problem+json": {}}}


@router.post("", response_model=DiscountRead, status_code=status.HTTP_201_CREATED,
             summary="Create a discount code", responses={409: PROBLEM, 422: PROBLEM})
def create(body: DiscountCreate, session: SessionDep, clock: ClockDep,
           _: Manager) -> DiscountRead:
    spec = service.CodeSpec(**body.model_dump())
    return DiscountRead.model_validate(service.create_code(session, clock=clock, spec=spec))


@router.get("", response_model=list[DiscountRead], summary="Discount codes, newest first")
def list_(session: SessionDep, _: Manager,
          limit: Annotated[int, Query(ge=1, le=500)] = 100,
          offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[DiscountRead]:
    return [DiscountRead.model_validate(code)
            for code in service.list_codes(session, limit=limit, offset=offset)]


@router.get("/{code_id}", response_model=DiscountRead, summary="One discount code",
            responses={404: PROBLEM})
def show(code_id: IdPath, session: SessionDep, _: Manager) -> DiscountRead:
    return DiscountRead.model_validate(service.get_code(session, code_id))


@router.post("/{code_id}/disable", response_model=DiscountRead,
             summary="Withdraw a code (orders that used it keep their price)",
             responses={404: PROBLEM})
def disable(code_id: IdPath, session: SessionDep, clock: ClockDep,
            _: Manager) -> DiscountRead:
    return DiscountRead.model_validate(service.disable_code(session, clock=clock,
                                                            code_id=code_id))
