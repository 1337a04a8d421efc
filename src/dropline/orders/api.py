from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from dropline.errors import PaymentDeclined
from dropline.idempotency.service import Claim
from dropline.orders import flows, service
from dropline.orders.models import OrderStatus
from dropline.orders.schemas import (
    CheckoutCreate,
    OrderLineRead,
    OrderRead,
    OrderSummary,
    PaymentRead,
    RefundCreate,
    RefundRead,
)
from dropline.schemas import IdPath
from dropline.web.deps import CustomerDep, Principal, ServicesDep, SessionDep, admin
from dropline.web.idempotency import run_idempotent
from dropline.web.throttle import record_decline

router = APIRouter(tags=["orders"])
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=255,
    description="unique per attempt (e.g. a UUID); resend the same key when retrying")]
PROBLEM = {"content": {"application/problem+json": {}}}


def order_read(session: Session, order_id: int, customer_id: int | None = None) -> OrderRead:
    detail = service.order_detail(session, service.get_order(session, order_id,
                                                             customer_id=customer_id))
    return OrderRead(
        **{k: getattr(detail.order, k) for k in OrderRead.model_fields
           if k not in ("lines", "payments", "refunds")},
        lines=[OrderLineRead.model_validate(line) for line in detail.lines],
        payments=[PaymentRead.model_validate(p) for p in detail.payments],
        refunds=[RefundRead.model_validate(r) for r in detail.refunds],
    )


@router.post(
    "/checkout", response_model=OrderRead, status_code=status.HTTP_201_CREATED,
    summary="Pay for a cart (idempotent)",
    responses={402: PROBLEM, 409: PROBLEM, 422: PROBLEM, 503: PROBLEM},
    description="Send an `Idempotency-Key`. The same key with the same body returns the "
                "stored response; with a different body, 422; while the first is running, 409.",
)
def checkout(body: CheckoutCreate, request: Request, services: ServicesDep,
             customer: CustomerDep, idempotency_key: IdempotencyKey = None) -> JSONResponse:
    def operation(claim: Claim) -> tuple[int, OrderRead]:
        try:
            order_id = flows.checkout(
                services.db, clock=services.clock, settings=services.settings,
                provider=services.payments, policy=services.checkout,
                request=flows.CheckoutRequest(
                    customer_id=customer.id, cart_id=body.cart_id,
                    card=services.payments.describe_card(body.payment_method),
                    shipping_address=body.shipping_address.model_dump(),
                    checkout_reference=claim.reference,
                    delivery=flows.DeliveryChoice(**body.delivery.model_dump())
                    if body.delivery else None,
                ),
            )
        except PaymentDeclined:
            record_decline(services, request, customer.id)  # card testing (web.throttle)
            raise
        with services.db.transaction() as session:
            return 201, order_read(session, order_id)

    return run_idempotent(services, request=request, principal=customer, key=idempotency_key,
                          body=body, operation=operation)


@router.get("/orders", response_model=list[OrderSummary], summary="My orders")
def my_orders(customer: CustomerDep, session: SessionDep,
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[OrderSummary]:
    return [OrderSummary.model_validate(o) for o in
            service.list_orders(session, customer_id=customer.id, limit=limit, offset=offset)]


@router.get("/orders/{order_id}", response_model=OrderRead, summary="One of my orders")
def my_order(order_id: IdPath, customer: CustomerDep, session: SessionDep) -> OrderRead:
    return order_read(session, order_id, customer_id=customer.id)


@router.get("/admin/orders", response_model=list[OrderSummary], tags=["admin"],
            summary="All orders")
def all_orders(session: SessionDep, _: Annotated[Principal, admin("orders:read")],
               status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[OrderSummary]:
    return [OrderSummary.model_validate(o) for o in
            service.list_orders(session, status=status_, limit=limit, offset=offset)]


@router.get("/admin/orders/{order_id}", response_model=OrderRead, tags=["admin"],
            summary="One order")
def any_order(order_id: IdPath, session: SessionDep,
              _: Annotated[Principal, admin("orders:read")]) -> OrderRead:
    return order_read(session, order_id)


@router.post("/admin/orders/{order_id}/refunds", response_model=RefundRead,
             status_code=status.HTTP_201_CREATED, tags=["admin"],
             summary="Refund part or all of an order (idempotent)",
             responses={409: PROBLEM, 422: PROBLEM})
def refund(order_id: IdPath, body: RefundCreate, request: Request, services: ServicesDep,
           principal: Annotated[Principal, admin("orders:refund")],
           idempotency_key: IdempotencyKey = None) -> JSONResponse:
    # A URL naming no order is refused before the key is claimed, so probing ids leaves no
    # idempotency record behind.
    with services.db.transaction() as session:
        service.get_order(session, order_id)

    def operation(claim: Claim) -> tuple[int, RefundRead]:
        refund_id = flows.refund_order(
            services.db, clock=services.clock, provider=services.payments, order_id=order_id,
            amount=body.amount, reason=body.reason, actor=principal.key,
            idempotency_key=claim.reference,
        )
        with services.db.transaction() as session:
            detail = service.order_detail(session, service.get_order(session, order_id))
            return 201, next(RefundRead.model_validate(r) for r in detail.refunds
                             if r.id == refund_id)

    return run_idempotent(services, request=request, principal=principal, key=idempotency_key,
                          body=body, operation=operation)
