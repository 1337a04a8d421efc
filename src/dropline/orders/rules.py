"""Pure order logic: what every order event carries, and the order lifecycle's state machine.
Priced lines and totals live in ``dropline.pricing`` (below carts and orders); they are
re-exported here for the modules that still import them from ``orders.rules``.

The lifecycle is where the goods are; ``Order.status`` is where the money is (paid, partially
refunded, refunded). They move apart: a shipped order can be partially refunded, a cancelled
one is refunded. Every move of the stage goes through ``next_stage``::

    paid -> allocated -> picking -> packed -> shipped -> delivered
      \\________\\__________\\--> cancelled        shipped -> delivery-failed -> shipped (again)
                                                  delivery-failed | shipped -> returned

Cancelling (whole or some lines) and changing the address are allowed only before packing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dropline.errors import InvalidInput, InvalidState
from dropline.pricing import PricedLine, Totals, order_totals, reconciles, shipping_for

__all__ = [
    "BEFORE_PACKING",
    "TIMELINE_LABELS",
    "TRANSITIONS",
    "LineCancel",
    "OrderStage",
    "PricedLine",
    "StageConflict",
    "Totals",
    "check_before_packing",
    "discount_share",
    "next_stage",
    "order_event_payload",
    "order_totals",
    "partial_cancel_amount",
    "reconciles",
    "shipping_for",
]


def order_event_payload(*, order_id: int, total_amount: int, currency: str,
                        acquisition_source: str, acquisition_campaign: str,
                        product_families: Iterable[str], fulfilment_path: str) -> dict[str, Any]:
    """What every order event carries, so telemetry can cut by source, family and path."""
    return {
        "order_id": order_id, "total_amount": total_amount, "currency": currency,
        "acquisition_source": acquisition_source, "acquisition_campaign": acquisition_campaign,
        "product_families": sorted(set(product_families)), "fulfilment_path": fulfilment_path,
    }


# ---------------------------------------------------------------------------- the lifecycle


class OrderStage(enum.StrEnum):
    paid = "paid"
    allocated = "allocated"
    picking = "picking"
    packed = "packed"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"
    delivery_failed = "delivery-failed"
    returned = "returned"


S = OrderStage
BEFORE_PACKING = frozenset({S.paid, S.allocated, S.picking})

# action -> (the stages it may start from, the stage it leads to); the action is also the
# event's name: ``order.<action>`` (``order.cancelled`` ...).
TRANSITIONS: Mapping[str, tuple[frozenset[OrderStage], OrderStage]] = {
    "allocated": (frozenset({S.paid}), S.allocated),
    "picking": (frozenset({S.allocated}), S.picking),
    "packed": (frozenset({S.picking}), S.packed),
    "shipped": (frozenset({S.packed, S.delivery_failed}), S.shipped),
    "delivered": (frozenset({S.shipped}), S.delivered),
    "delivery_failed": (frozenset({S.shipped}), S.delivery_failed),
    "returned": (frozenset({S.shipped, S.delivery_failed}), S.returned),
    "cancelled": (BEFORE_PACKING, S.cancelled),
}
# What ``advance`` does from each stage: the next step that needs no more input.
FORWARD: Mapping[OrderStage, str] = {S.paid: "allocated", S.allocated: "picking",
                                     S.picking: "packed"}


class StageConflict(InvalidState):
    """An action the order's current stage does not allow (409, with ``current_stage``)."""

    slug = "order-stage-conflict"
    title = "The order is not at a stage that allows this"


def next_stage(current: OrderStage, action: str) -> OrderStage:
    """The stage ``action`` leads to from ``current``; raises StageConflict if it may not."""
    if action not in TRANSITIONS:
        raise InvalidInput(f"unknown order action {action!r}; one of "
                           f"{', '.join(sorted(TRANSITIONS))}", field="action")
    sources, target = TRANSITIONS[action]
    if current not in sources:
        allowed = ", ".join(sorted(s.value for s in sources))
        raise StageConflict(f"the order is {current.value}; it can become {target.value} "
                            f"only from {allowed}", current_stage=current.value,
                            action=action)
    return target


def check_before_packing(current: OrderStage, what: str) -> None:
    """Changing the address or cancelling some lines is possible only before packing."""
    if current not in BEFORE_PACKING:
        raise StageConflict(f"the order is {current.value}; {what} is possible only before "
                            "it is packed", current_stage=current.value, action=what)


@dataclass(frozen=True)
class LineCancel:
    """One line's part of a partial cancellation, with what is already cancelled of it."""

    line_id: int
    unit_price_amount: int
    quantity: int
    already_cancelled: int
    cancel: int
    discount_amount: int = 0  # a discount code's part of the whole line


def discount_share(discount_amount: int, quantity: int, *, before: int, after: int) -> int:
    """The part of a line's discount that belongs to units ``before`` .. ``after`` of its
    ``quantity`` (units counted in cancellation order): cumulative shares rounded down, so the
    shares of every unit add up to the line's discount exactly."""
    return discount_amount * after // quantity - discount_amount * before // quantity


def partial_cancel_amount(lines: Iterable[LineCancel], *, refundable: int) -> int:
    """What a partial cancellation refunds: the cancelled units at the price paid for them,
    that is less their share of any discount code (delivery is not refunded until the whole
    order is cancelled), never more than is left to refund. Raises InvalidInput for a quantity the line does not have."""
    amount = 0
    for line in lines:
        if line.cancel <= 0:
            raise InvalidInput(f"line {line.line_id}: cancel at least one unit",
                               field="quantity")
        left = line.quantity - line.already_cancelled
        if line.cancel > left:
            raise InvalidInput(f"line {line.line_id} has {left} unit(s) left to cancel",
                               field="quantity", line_id=line.line_id, left=left)
        amount += line.unit_price_amount * line.cancel - discount_share(
            line.discount_amount, line.quantity, before=line.already_cancelled,
            after=line.already_cancelled + line.cancel)
    return min(amount, refundable)


# What the shopper's timeline calls each order event; events not named here are not shown.
TIMELINE_LABELS: Mapping[str, str] = {
    "order.created": "Order placed",
    "order.paid": "Payment received",
    "order.payment_failed": "Payment declined",
    "order.allocated": "Being prepared",
    "order.picking": "Being picked",
    "order.packed": "Packed",
    "order.shipped": "Shipped",
    "order.delivery_failed": "Delivery attempt failed",
    "order.delivered": "Delivered",
    "order.returned": "Returned to us",
    "order.cancelled": "Cancelled",
    "order.lines_cancelled": "Items cancelled",
    "order.address_changed": "Delivery address changed",
    "order.refunded": "Refund issued",
}
