from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from dropline.carts import service
from dropline.carts.models import Cart
from dropline.carts.schemas import CartCreate, CartLineRead, CartRead, LineSet
from dropline.schemas import IdPath
from dropline.web.deps import ClockDep, OptionalCustomer, SessionDep, SettingsDep

router = APIRouter(tags=["carts"])
CartId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="cart UUID")]


def cart_read(view: service.CartView) -> CartRead:
    totals = view.totals
    return CartRead(
        id=view.cart.id, status=view.cart.status, currency=view.cart.currency,
        lines=[CartLineRead(**line.__dict__, line_total_amount=line.line_total_amount)
               for line in view.lines],
        subtotal_amount=totals.subtotal_amount if totals else 0,
        shipping_amount=totals.shipping_amount if totals else 0,
        total_amount=totals.total_amount if totals else 0,
    )


def _view(session: SessionDep, settings: SettingsDep, cart: Cart) -> CartRead:
    return cart_read(service.view_cart(
        session, cart=cart, flat_shipping=settings.shop.flat_shipping_amount,
        free_shipping_threshold=settings.shop.free_shipping_threshold))


@router.post("/carts", response_model=CartRead, status_code=status.HTTP_201_CREATED,
             summary="Start a cart (guest or signed-in)")
def create_cart(session: SessionDep, clock: ClockDep, settings: SettingsDep,
                customer: OptionalCustomer, body: CartCreate | None = None) -> CartRead:
    cart = service.create_cart(session, clock=clock, currency=settings.shop.currency,
                               customer_id=customer.id if customer else None)
    return _view(session, settings, cart)


@router.get("/carts/{cart_id}", response_model=CartRead, summary="A cart with its totals")
def get_cart(cart_id: CartId, session: SessionDep, settings: SettingsDep,
             customer: OptionalCustomer) -> CartRead:
    cart = service.load_cart(session, cart_id=cart_id, customer_id=customer.id if customer else None)
    return _view(session, settings, cart)


@router.put("/carts/{cart_id}/lines/{variant_id}", response_model=CartRead,
            summary="Set the quantity of a variant (0 removes it)")
def set_line(cart_id: CartId, variant_id: IdPath, body: LineSet, session: SessionDep,
             clock: ClockDep, settings: SettingsDep, customer: OptionalCustomer) -> CartRead:
    cart = service.load_cart(session, cart_id=cart_id, customer_id=customer.id if customer else None)
    service.set_line(session, clock=clock, cart=cart, variant_id=variant_id,
                     quantity=body.quantity)
    return _view(session, settings, cart)


@router.delete("/carts/{cart_id}/lines/{variant_id}", response_model=CartRead,
               summary="Remove a variant from the cart")
def remove_line(cart_id: CartId, variant_id: IdPath, session: SessionDep, clock: ClockDep,
                settings: SettingsDep, customer: OptionalCustomer) -> CartRead:
    cart = service.load_cart(session, cart_id=cart_id, customer_id=customer.id if customer else None)
    service.set_line(session, clock=clock, cart=cart, variant_id=variant_id, quantity=0)
    return _view(session, settings, cart)
