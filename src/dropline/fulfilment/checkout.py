"""Fulfilment's part of the checkout policy (``orders.policy.CheckoutPolicy``): re-deciding a
picked hub delivery window at checkout, booking it with the order, and freeing it when the
payment fails. The shopper's membership facts come from the caller (the root's composite), so
fulfilment does not import memberships."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import InvalidState
from dropline.fulfilment import rules as R
from dropline.fulfilment.errors import WindowFull
from dropline.fulfilment.steering import FULL_VANS
from dropline.fulfilment.models import DeliveryWindow
from dropline.fulfilment.ports import Geocoder
from dropline.fulfilment.service import (
    CustomerFacts,
    Destination,
    LineRequest,
    Steering,
    book_window,
    cancel_booking,
    decide_with_options,
    order_weight,
    record_decision,
    resolve_destination,
)
from dropline.orders.policy import DeliveryChoice, WindowQuote

__all__ = ["WindowBooking", "WindowCheckout"]


@dataclass(frozen=True)
class WindowBooking:
    """What booking a quoted window needs later in the checkout's transaction."""

    destination: Destination
    decision: R.Decision


class WindowCheckout:
    """Quotes, books and frees hub delivery windows for the cart checkout."""

    def __init__(self, geocoder: Geocoder, *, steering: bool = False) -> None:
        self._geocoder = geocoder
        self._steering = steering

    def quote_window(self, session: Session, *, lines: Sequence[tuple[int, int]],
                     choice: DeliveryChoice, postcode: str, at: datetime,
                     customer: CustomerFacts, subsidise: Callable[[int], int]) -> WindowQuote:
        """The picked window, re-decided now: it must still be open, in stock at its hub, and
        able to take the order; its price comes from the marginal cost of the stop, and
        ``subsidise`` turns it into what the shopper pays."""
        destination = resolve_destination(geocoder=self._geocoder, latitude=choice.latitude,
                                          longitude=choice.longitude, postcode=postcode)
        decision, options = decide_with_options(
            session, lines=[LineRequest(variant_id, quantity) for variant_id, quantity in lines],
            destination=destination, at=at, customer=customer,
            steering=Steering() if self._steering else None)
        option = next((o for o in options.options if o.window_id == choice.window_id), None)
        if option is None or not option.eligible:
            window = session.get(DeliveryWindow, choice.window_id)
            vans_full = option is not None and FULL_VANS in (option.excluded or "")
            if window is not None and (window.booked >= window.capacity or vans_full):
                # A full window (by its count, or its vans' time under steering) is full:
                # say so, rather than "not served" or "cannot take this order".
                raise WindowFull(f"delivery window {choice.window_id} is full "
                                 f"({window.capacity} orders, or its vans' time); pick another "
                                 "from GET /api/v1/delivery-options",
                                 window_id=choice.window_id)
        if option is None or not option.eligible:
            why = option.excluded if option is not None else "it does not serve this address"
            raise InvalidState(f"delivery window {choice.window_id} cannot take this order "
                               f"({why}); pick another from GET /api/v1/delivery-options",
                               window_id=choice.window_id)
        price = option.price_amount or 0
        shipping = subsidise(price)
        return WindowQuote(window_id=choice.window_id, location_id=option.location_id,
                           shipping_amount=shipping, subsidised=shipping < price,
                           booking=WindowBooking(destination, decision))

    def book_window(self, session: Session, *, clock: Clock, quote: WindowQuote, order_id: int,
                    customer_id: int) -> None:
        booking: WindowBooking = quote.booking
        book_window(session, clock=clock, window_id=quote.window_id, order_id=order_id,
                    destination=booking.destination,
                    weight_grams=order_weight(session, order_id))
        record_decision(session, clock=clock, decision=booking.decision, order_id=order_id,
                        customer_id=customer_id)

    def cancel_window(self, session: Session, *, clock: Clock, order_id: int) -> None:
        cancel_booking(session, clock=clock, order_id=order_id)
