from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from dropline.carts.service import load_cart, view_cart
from dropline.errors import InvalidInput, PaymentDeclined
from dropline.idempotency.service import Claim
from dropline.orders import documents, flows, lifecycle, service, shipments
from dropline.orders.models import OrderStatus
from dropline.orders.quote import quote_checkout
from dropline.orders.schemas import (
    AddressIn,
    AllocateCreate,
    CancelCreate,
    CheckoutCreate,
    DeliveryCreate,
    OrderLineRead,
    OrderRead,
    OrderSummary,
    PaymentRead,
    PickRowRead,
    QuoteCreate,
    QuoteLineRead,
    QuoteRead,
    RefundCreate,
    RefundRead,
    ShipCreate,
    ShipmentLineRead,
    ShipmentRead,
    TimelineRead,
)
from dropline.schemas import IDEMPOTENCY_KEY_PATTERN, Day, IdPath
from dropline.web.deps import CustomerDep, Principal, ServicesDep, SessionDep, admin
from dropline.web.idempotency import run_idempotent
from dropline.web.throttle import record_decline, refuse_cooling_card

router = APIRouter(tags=["orders"])
IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key", max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN,
    description="unique per attempt (e.g. a UUID); resend the same key when retrying")]
PROBLEM = {"content": {"application/problem+json": {}}}


def shipment_reads(session: Session, order_id: int) -> list[ShipmentRead]:
    return [ShipmentRead(
        id=view.shipment.id, location=view.location_code, status=view.shipment.status,
        carrier=view.shipment.carrier, tracking_number=view.shipment.tracking_number,
        tracking_url=view.shipment.tracking_url, shipped_at=view.shipment.shipped_at,
        delivered_at=view.shipment.delivered_at,
        lines=[ShipmentLineRead(order_line_id=line.id, sku=line.sku, quantity=units)
               for line, units in view.lines])
        for view in shipments.order_shipments(session, order_id)]


def order_read(session: Session, order_id: int, customer_id: int | None = None) -> OrderRead:
    detail = service.order_detail(session, service.get_order(session, order_id,
                                                             customer_id=customer_id))
    return OrderRead(
        **{k: getattr(detail.order, k) for k in OrderRead.model_fields
           if k not in ("lines", "payments", "refunds", "shipments", "timeline")},
        lines=[OrderLineRead.model_validate(line) for line in detail.lines],
        payments=[PaymentRead.model_validate(p) for p in detail.payments],
        refunds=[RefundRead.model_validate(r) for r in detail.refunds],
        shipments=shipment_reads(session, order_id),
        timeline=[TimelineRead.model_validate(entry)
                  for entry in service.order_timeline(session, order_id)],
    )


@router.post(
    "/checkout", response_model=OrderRead, status_code=status.HTTP_201_CREATED,
    summary="Pay for a cart (idempotent)",
    responses={402: PROBLEM, 409: PROBLEM, 422: PROBLEM, 503: PROBLEM},
    description="Send an `Idempotency-Key`. The same key with the same body returns the "
                "stored response; with a different body, 422; while the first is running, 409.",
)
def checkout(body: CheckoutCreate, request: Request, services: ServicesDep,
             customer: CustomerDep, idempotency_key: IdempotencyKey) -> JSONResponse:
    def operation(claim: Claim) -> tuple[int, OrderRead]:
        card = services.payments.describe_card(body.payment_method)
        refuse_cooling_card(services, card.fingerprint)  # card testing (web.throttle)
        try:
            order_id = flows.checkout(
                services.db, clock=services.clock, settings=services.settings,
                provider=services.payments, policy=services.checkout,
                request=flows.CheckoutRequest(
                    customer_id=customer.id, cart_id=body.cart_id,
                    card=card,
                    shipping_address=body.shipping_address.model_dump(),
                    checkout_reference=claim.reference,
                    delivery=flows.DeliveryChoice(**body.delivery.model_dump())
                    if body.delivery else None,
                    discount_code=body.discount_code, vat_number=body.vat_number,
                ),
                vat_checker=services.vat_checker,
            )
        except PaymentDeclined:
            record_decline(services, request, customer.id, card.fingerprint)
            raise
        with services.db.transaction() as session:
            return 201, order_read(session, order_id)

    return run_idempotent(services, request=request, principal=customer, key=idempotency_key,
                          body=body, operation=operation)


@router.post("/checkout/quote", response_model=QuoteRead, summary="Price my cart (no payment)",
             responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
             description="What `POST /checkout` with the same cart, delivery and "
                         "`discount_code` would charge now. A refused code answers with its "
                         "own problem type; a window that cannot take the order is quoted as "
                         "standard delivery, with `problem` saying why.")
def quote(body: QuoteCreate, services: ServicesDep, customer: CustomerDep,
          session: SessionDep) -> QuoteRead:
    view = view_cart(session, cart=load_cart(session, cart_id=body.cart_id,
                                             customer_id=customer.id),
                     flat_shipping=services.settings.shop.flat_shipping_amount,
                     free_shipping_threshold=services.settings.shop.free_shipping_threshold)
    if not view.lines:
        raise InvalidInput("the cart is empty", field="cart_id")
    priced = quote_checkout(
        session, clock=services.clock, settings=services.settings, policy=services.checkout,
        customer_id=customer.id, view=view,
        delivery=flows.DeliveryChoice(**body.delivery.model_dump()) if body.delivery else None,
        postcode=body.postcode, discount_code=body.discount_code, country=body.country,
        vat_number=body.vat_number, vat_checker=services.vat_checker)
    vat = priced.tax
    assert vat is not None
    return QuoteRead(
        currency=priced.currency,
        lines=[QuoteLineRead(variant_id=line.variant_id, quantity=line.quantity,
                             list_unit_amount=line.list_unit_amount,
                             unit_price_amount=line.unit_price_amount,
                             line_total_amount=line.line_total_amount,
                             discount_amount=line.discount_amount,
                             tax_class=tax.tax_class.value, tax_rate_bp=tax.rate_bp,
                             tax_amount=tax.tax_amount)
               for line, tax in zip(priced.lines, vat.lines, strict=True)],
        list_subtotal_amount=priced.list_subtotal_amount,
        subtotal_amount=priced.subtotal_amount,
        member_saving_amount=priced.member_saving_amount,
        discount_code=priced.discount_code, discount_amount=priced.discount_amount,
        delivery_discount_amount=priced.delivery_discount_amount,
        shipping_amount=priced.shipping_amount, shipping_tax_amount=vat.shipping.tax_amount,
        tax_amount=vat.tax_amount, tax_added_amount=vat.added_amount,
        prices_include_tax=vat.prices_include_tax, reverse_charge=vat.reverse_charge,
        total_amount=priced.total_amount,
        window_id=priced.window_id, problem=priced.problem)


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
           idempotency_key: IdempotencyKey) -> JSONResponse:
    # A URL naming no order is refused before the key is claimed, so probing ids leaves no
    # idempotency record behind.
    with services.db.transaction() as session:
        service.get_order(session, order_id)

    def operation(claim: Claim) -> tuple[int, RefundRead]:
        refund_id = flows.refund_order(
            services.db, clock=services.clock, provider=services.payments,
            credit_notes=services.credit_notes, order_id=order_id, amount=body.amount,
            reason=body.reason, actor=principal.key,
            idempotency_key=claim.reference,
        )
        with services.db.transaction() as session:
            detail = service.order_detail(session, service.get_order(session, order_id))
            return 201, next(RefundRead.model_validate(r) for r in detail.refunds
                             if r.id == refund_id)

    return run_idempotent(services, request=request, principal=principal, key=idempotency_key,
                          body=body, operation=operation)


# ------------------------------------------------------------------------ the lifecycle
Fulfiller = Annotated[Principal, admin("orders:fulfil")]
STAGE_CONFLICT = {409: {**PROBLEM, "description": "the order's stage does not allow this; "
                        "the problem's `current_stage` says where it is"}}


def _moved(services: ServicesDep, order_id: int) -> OrderRead:
    with services.db.transaction() as session:
        return order_read(session, order_id)


@router.post("/admin/orders/{order_id}/allocate", response_model=OrderRead, tags=["admin"],
             summary="Allocate a paid order: one shipment per location",
             responses={**STAGE_CONFLICT, 404: PROBLEM, 422: PROBLEM})
def allocate(order_id: IdPath, body: AllocateCreate, services: ServicesDep,
             _: Fulfiller) -> OrderRead:
    with services.db.transaction() as session:
        shipments.allocate(session, clock=services.clock,
                           order=service.get_order(session, order_id),
                           moves={move.line_id: move.location for move in body.moves})
    return _moved(services, order_id)


@router.post("/admin/orders/{order_id}/advance", response_model=OrderRead, tags=["admin"],
             summary="The next step: allocate, start picking or pack",
             responses={**STAGE_CONFLICT, 404: PROBLEM})
def advance(order_id: IdPath, services: ServicesDep, _: Fulfiller) -> OrderRead:
    with services.db.transaction() as session:
        shipments.advance(session, clock=services.clock,
                          order=service.get_order(session, order_id))
    return _moved(services, order_id)


@router.post("/admin/orders/{order_id}/ship", response_model=OrderRead, tags=["admin"],
             summary="Ship a parcel of a packed order with a carrier and tracking number",
             responses={**STAGE_CONFLICT, 404: PROBLEM, 422: PROBLEM})
def ship(order_id: IdPath, body: ShipCreate, services: ServicesDep,
         _: Fulfiller) -> OrderRead:
    flows.ship_order(services.db, clock=services.clock, carriers=services.carriers,
                     order_id=order_id, carrier=body.carrier,
                     tracking_number=body.tracking_number, service=body.service,
                     shipment_id=body.shipment_id)
    return _moved(services, order_id)


@router.post("/admin/orders/{order_id}/delivery", response_model=OrderRead, tags=["admin"],
             summary="Record a delivery, a failed attempt or a return to sender",
             responses={**STAGE_CONFLICT, 404: PROBLEM})
def delivery(order_id: IdPath, body: DeliveryCreate, services: ServicesDep,
             _: Fulfiller) -> OrderRead:
    with services.db.transaction() as session:
        shipments.settle_delivery(session, clock=services.clock,
                                  order=service.get_order(session, order_id),
                                  outcome=body.outcome, note=body.note)
    return _moved(services, order_id)


@router.put("/admin/orders/{order_id}/address", response_model=OrderRead, tags=["admin"],
            summary="Change the shipping address before packing",
            responses={**STAGE_CONFLICT, 404: PROBLEM})
def change_address(order_id: IdPath, body: AddressIn, services: ServicesDep,
                   _: Fulfiller) -> OrderRead:
    with services.db.transaction() as session:
        lifecycle.change_address(session, clock=services.clock,
                                 order=service.get_order(session, order_id),
                                 address=body.model_dump())
    return _moved(services, order_id)


@router.post("/admin/orders/{order_id}/cancel", response_model=OrderRead, tags=["admin"],
             summary="Cancel an order before packing, whole or some units (refunds them)",
             responses={**STAGE_CONFLICT, 404: PROBLEM, 422: PROBLEM},
             description="Refunds the cancelled units (the whole order: everything left, "
                         "delivery included) and returns them to stock. Send an "
                         "`Idempotency-Key` when cancelling some lines, so a retry does not "
                         "cancel them twice.")
def cancel(order_id: IdPath, body: CancelCreate, request: Request, services: ServicesDep,
           principal: Annotated[Principal, admin("orders:refund")],
           idempotency_key: IdempotencyKey = None) -> JSONResponse:
    with services.db.transaction() as session:
        service.get_order(session, order_id)

    def operation(claim: Claim) -> tuple[int, OrderRead]:
        flows.cancel_order(
            services.db, clock=services.clock, provider=services.payments,
            policy=services.checkout, credit_notes=services.credit_notes,
            order_id=order_id, reason=body.reason,
            actor=principal.key, idempotency_key=claim.reference,
            lines=None if body.lines is None else _quantities(body))
        return 200, _moved(services, order_id)

    return run_idempotent(services, request=request, principal=principal, key=idempotency_key,
                          body=body, operation=operation)


def _quantities(body: CancelCreate) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in body.lines or []:
        out[line.line_id] = out.get(line.line_id, 0) + line.quantity
    return out


@router.get("/admin/pick-lists/{location}", response_model=list[PickRowRead],
            tags=["admin"], summary="What to pick at a location on a day",
            responses={404: PROBLEM})
def pick_list(location: Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9_-]+$")],
              session: SessionDep, services: ServicesDep, _: Fulfiller,
              day: Annotated[Day | None, Query()] = None) -> list[PickRowRead]:
    rows = shipments.pick_list(session, location_code=location,
                               day=day or services.clock.now().date())
    return [PickRowRead.model_validate(row) for row in rows]


@router.get("/admin/shipments/{shipment_id}/{document}.pdf", tags=["admin"],
            summary="A shipment's packing slip or 4x6 label (PDF)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}},
                                                404: PROBLEM})
def shipment_pdf(shipment_id: IdPath, document: Literal["packing-slip", "label"],
                 session: SessionDep, services: ServicesDep, _: Fulfiller) -> Response:
    doc = documents.shipment_document(session, shipment_id=shipment_id,
                                      shop_name=services.settings.shop.name)
    body = documents.packing_slip_pdf(doc) if document == "packing-slip" \
        else documents.label_pdf(doc)
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="order-{doc.order_id}-{shipment_id}-'
                               f'{document}.pdf"'})
