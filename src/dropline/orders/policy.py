"""The checkout policy port: what the cart checkout asks of the domains above orders.

The checkout flow (``orders.flows.checkout``) decides stock, totals and payment; what a member
pays and whether a hub delivery window can take the order are other domains' rules
(memberships' perks, fulfilment's windows). Orders states the questions here and the
composition root hands in an implementation (``dropline.checkout_policy``), so orders never
imports memberships or fulfilment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from dropline.clock import Clock

__all__ = ["CheckoutPolicy", "CreditNoteIssuer", "DeliveryChoice", "DiscountFacts",
           "WindowQuote"]


class CreditNoteIssuer(Protocol):
    """Issues a refund's credit note inside the transaction that settles the refund, so every
    refund (on request, a cancellation's, a return's) has exactly one and its number is taken
    with it. Invoices are a domain above orders: the composition root hands in
    ``invoices.service.CreditNotes``. Must be idempotent per refund."""

    def __call__(self, session: Session, *, clock: Clock, refund_id: int) -> object: ...


@dataclass(frozen=True)
class DeliveryChoice:
    """A hub delivery window the shopper picked (from GET /api/v1/delivery-options), and where
    to: latitude/longitude when known, else the address's postcode is geocoded."""

    window_id: int
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class WindowQuote:
    """A picked window re-decided at checkout: where the units come from and what delivery
    costs the shopper (after any member subsidy). ``booking`` is the policy's own data for
    ``book_window`` (destination and decision); orders only carries it."""

    window_id: int
    location_id: int
    shipping_amount: int
    subsidised: bool
    booking: Any = None


@dataclass(frozen=True)
class DiscountFacts:
    """What a discount code's scope asks about the shopper and the cart that orders does not
    know: the shopper's membership tier (its slug, None for no membership) and the drops each
    variant is on sale in."""

    tier_slug: str | None = None
    drops: Mapping[int, frozenset[int]] = field(default_factory=dict)


class CheckoutPolicy(Protocol):
    """The checkout's questions; every method runs inside the checkout's transaction."""

    def member_price(self, session: Session, *, customer_id: int, variant_id: int,
                     base_amount: int, at: datetime) -> int:
        """The unit price this customer pays for a variant listed at ``base_amount``."""
        ...

    def quote_window(self, session: Session, *, customer_id: int,
                     lines: Sequence[tuple[int, int]], choice: DeliveryChoice, postcode: str,
                     at: datetime) -> WindowQuote:
        """The picked window for these (variant_id, quantity) lines, re-decided now; raises
        InvalidState when it can no longer take the order."""
        ...

    def book_window(self, session: Session, *, clock: Clock, quote: WindowQuote,
                    order_id: int, customer_id: int) -> None:
        """Takes the order's place in the quoted window (raising when it is full) and records
        the decision."""
        ...

    def cancel_window(self, session: Session, *, clock: Clock, order_id: int) -> None:
        """Frees the order's place in its window (its payment failed)."""
        ...

    def discount_facts(self, session: Session, *, customer_id: int,
                       variant_ids: Sequence[int], at: datetime) -> DiscountFacts:
        """The shopper's tier and the variants' drops, for a discount code's scope (asked
        only when the shopper gives a code)."""
        ...
