"""Pure rules: return eligibility, refund arithmetic (integer minor units) and the fraud
signals. No session, no I/O: each signal is a small function of plain facts that returns a
``Signal`` (with the points it adds and a sentence saying why) or ``None``.

The score of a return is the sum of the points of the signals that fired, capped at 100; at
or above the review threshold the return waits for a person instead of being refunded
automatically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from dropline.errors import InvalidInput

MAX_SCORE = 100


# --- eligibility -------------------------------------------------------------------------

@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    reason: str
    deadline: datetime | None = None


def return_eligibility(*, purchased_at: datetime, now: datetime, window_days: int,
                       final_sale: bool) -> Eligibility:
    """A final-sale item never; otherwise until ``window_days`` after purchase."""
    if final_sale:
        return Eligibility(False, "this item was sold as final sale and cannot be returned")
    deadline = purchased_at + timedelta(days=window_days)
    if now > deadline:
        return Eligibility(False, f"the {window_days}-day return window closed on "
                                  f"{deadline.date().isoformat()}", deadline)
    return Eligibility(True, f"returnable until {deadline.date().isoformat()}", deadline)


# --- refund arithmetic --------------------------------------------------------------------

@dataclass(frozen=True)
class RefundQuote:
    gross_amount: int  # what the returned units cost the customer (after order discount)
    fee_amount: int  # restocking fee kept by the brand
    amount: int  # what is refunded: never negative, never above what is left to refund


def paid_for_units(*, unit_price_amount: int, quantity: int, order_subtotal: int,
                   order_discount: int) -> int:
    """The units' share of what was paid: their price less their pro-rata share of the order
    discount, rounded so the customer never gets back more than they paid."""
    if quantity <= 0 or unit_price_amount < 0:
        raise InvalidInput("quantity must be positive and the price not negative")
    price = unit_price_amount * quantity
    if order_subtotal <= 0 or order_discount <= 0:
        return price
    share = -(-order_discount * price // order_subtotal)  # ceil: the discount share rounds up
    return max(0, price - share)


def restocking_fee(gross_amount: int, *, fee_bps: int) -> int:
    """``fee_bps`` basis points (1000 = 10 %), rounded down in the customer's favour."""
    if not 0 <= fee_bps <= 10_000:
        raise InvalidInput("restocking fee must be between 0 and 10000 basis points")
    return gross_amount * fee_bps // 10_000


def refund_quote(*, gross_amount: int, fee_bps: int, left_to_refund: int,
                 requested_amount: int | None = None) -> RefundQuote:
    """Full (``requested_amount`` None) or partial refund of a return, less the restocking
    fee, clamped to ``[0, left_to_refund]``. A partial amount above the full refund is
    refused rather than silently cut."""
    if gross_amount < 0 or left_to_refund < 0:
        raise InvalidInput("amounts must not be negative")
    fee = restocking_fee(gross_amount, fee_bps=fee_bps)
    full = gross_amount - fee
    if requested_amount is not None:
        if requested_amount < 0:
            raise InvalidInput("a partial refund cannot be negative", field="refund_amount")
        if requested_amount > full:
            raise InvalidInput(f"a partial refund cannot exceed the full refund of {full} "
                               "minor units", field="refund_amount", full_amount=full)
        full = requested_amount
    return RefundQuote(gross_amount, fee, max(0, min(full, left_to_refund)))


# --- signals ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Signal:
    name: str
    points: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "points": self.points, "reason": self.reason}


@dataclass(frozen=True)
class Thresholds:
    """Every threshold and weight, configurable (``risk.config``)."""

    review_score: int = 40
    min_orders_for_rate: int = 3
    max_return_rate: float = 0.5
    norm_multiplier: float = 2.0
    value_multiplier: float = 3.0
    wardrobing_days: int = 7
    wardrobing_families: tuple[str, ...] = ("eau-de-parfum", "restored-diffusers")
    event_dates: tuple[date, ...] = ()
    event_window_days: int = 3
    velocity_days: int = 30
    velocity_refunds: int = 3
    linked_min_returns: int = 2
    weights: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def weight(self, name: str) -> int:
        return int(self.weights.get(name, DEFAULT_WEIGHTS[name]))


DEFAULT_WEIGHTS = {
    "return_rate": 40, "return_value": 15, "wardrobing": 40, "serial_mismatch": 60,
    "refund_velocity": 20, "linked_accounts": 40, "bypassed_queue": 15, "chargebacks": 40,
}


@dataclass(frozen=True)
class CustomerHistory:
    """What the customer has done before this return (this return excluded)."""

    orders: int = 0
    order_value: int = 0  # minor units, paid orders
    returns: int = 0
    returned_value: int = 0
    refunds_recent: int = 0  # refunds in the velocity window
    chargebacks: int = 0
    bypassed_queue_orders: int = 0


@dataclass(frozen=True)
class BrandNorm:
    return_rate: float = 0.0  # returns / paid orders, all customers
    average_return_value: int = 0


@dataclass(frozen=True)
class LinkedAccount:
    customer_id: int
    via: str  # "card", "address", "device"
    returns: int
    chargebacks: int


@dataclass(frozen=True)
class ReturnFacts:
    """One return, as the signals see it."""

    value: int  # gross minor units of the returned units
    family: str
    reason: str
    purchased_at: datetime
    requested_at: datetime
    sold_grade: str
    received_grade: str | None
    serial_received: str | None
    serials_sold_on_line: tuple[str, ...]
    serial_known: bool  # the serial exists in the shop's serial register at all
    serial_sold_elsewhere: bool  # the serial was sold, but on another order


def return_rate_signal(h: CustomerHistory, norm: BrandNorm, t: Thresholds) -> Signal | None:
    if h.orders < t.min_orders_for_rate:
        return None
    rate = h.returns / h.orders
    bar = max(t.max_return_rate, norm.return_rate * t.norm_multiplier)
    if rate < bar:
        return None
    return Signal("return_rate", t.weight("return_rate"),
                  f"returned {h.returns} of {h.orders} orders ({rate:.0%}); the brand's norm is "
                  f"{norm.return_rate:.0%} and the bar is {bar:.0%}")


def return_value_signal(f: ReturnFacts, h: CustomerHistory, norm: BrandNorm,
                        t: Thresholds) -> Signal | None:
    customer_avg = h.order_value // h.orders if h.orders else 0
    reference = max(customer_avg, norm.average_return_value)
    if reference <= 0 or f.value < reference * t.value_multiplier:
        return None
    return Signal("return_value", t.weight("return_value"),
                  f"this return is worth {f.value} minor units, over {t.value_multiplier:g}x "
                  f"the larger of the customer's average order ({customer_avg}) and the "
                  f"brand's average return ({norm.average_return_value})")


def wardrobing_signal(f: ReturnFacts, t: Thresholds) -> Signal | None:
    """Bought, used once, sent back: a short keep on a watched family with signs of use, or a
    purchase and return bracketing one of the brand's event dates."""
    kept = f.requested_at - f.purchased_at
    if f.family in t.wardrobing_families and kept <= timedelta(days=t.wardrobing_days):
        used = f.received_grade is not None and f.received_grade != f.sold_grade
        if used or f.reason in ("changed-mind", "no-longer-needed"):
            why = (f"came back as {f.received_grade} (sold {f.sold_grade})" if used
                   else f"reason '{f.reason}'")
            return Signal("wardrobing", t.weight("wardrobing"),
                          f"{f.family} kept {kept.days} day(s) (≤ {t.wardrobing_days}) and {why}")
    window = timedelta(days=t.event_window_days)
    bought, returned = f.purchased_at.date(), f.requested_at.date()
    for event in t.event_dates:
        if event - window <= bought <= event <= returned <= event + window:
            return Signal("wardrobing", t.weight("wardrobing"),
                          f"bought {f.purchased_at.date()} and returned {f.requested_at.date()},"
                          f" around the event of {event.isoformat()}")
    return None


def serial_mismatch_signal(f: ReturnFacts, t: Thresholds) -> Signal | None:
    weight = t.weight("serial_mismatch")
    if f.serial_received is None:
        if f.serials_sold_on_line:
            return Signal("serial_mismatch", weight,
                          "this line was sold with serial(s) "
                          f"{', '.join(f.serials_sold_on_line)} but none came back")
        return None
    if f.serial_received in f.serials_sold_on_line:
        return None
    if not f.serial_known:
        why = "was never sold by this shop"
    elif f.serial_sold_elsewhere:
        why = "was sold on a different order"
    else:
        why = "was not sold on this order"
    sold = ", ".join(f.serials_sold_on_line) or "no serial"
    return Signal("serial_mismatch", weight,
                  f"serial {f.serial_received} {why} (this line sold: {sold})")


def refund_velocity_signal(h: CustomerHistory, t: Thresholds) -> Signal | None:
    if h.refunds_recent < t.velocity_refunds:
        return None
    return Signal("refund_velocity", t.weight("refund_velocity"),
                  f"{h.refunds_recent} refunds in the last {t.velocity_days} days "
                  f"(threshold {t.velocity_refunds})")


def linked_accounts_signal(linked: Sequence[LinkedAccount], t: Thresholds) -> Signal | None:
    """Sharing an address or card is normal in a family; it counts when the linked accounts
    return a lot or have disputed charges."""
    if not linked:
        return None
    returns = sum(a.returns for a in linked)
    chargebacks = sum(a.chargebacks for a in linked)
    if returns < t.linked_min_returns and chargebacks == 0:
        return None
    via = ", ".join(sorted({f"{a.via} with customer {a.customer_id}" for a in linked}))
    return Signal("linked_accounts", t.weight("linked_accounts"),
                  f"shares {via}; those accounts have {returns} returns and {chargebacks} "
                  "chargebacks")


def bypassed_queue_signal(h: CustomerHistory, t: Thresholds) -> Signal | None:
    if h.bypassed_queue_orders == 0:
        return None
    return Signal("bypassed_queue", t.weight("bypassed_queue"),
                  f"{h.bypassed_queue_orders} order(s) took drop units without the waiting room")


def chargebacks_signal(h: CustomerHistory, t: Thresholds) -> Signal | None:
    if h.chargebacks == 0:
        return None
    return Signal("chargebacks", t.weight("chargebacks"),
                  f"{h.chargebacks} chargeback(s) on this customer's orders")


@dataclass(frozen=True)
class Score:
    score: int
    signals: tuple[Signal, ...]
    threshold: int

    @property
    def needs_review(self) -> bool:
        return self.score >= self.threshold

    @property
    def reasons(self) -> list[str]:
        return [f"{s.name} (+{s.points}): {s.reason}" for s in self.signals] or [
            "no risk signal fired"]


def _total(signals: Sequence[Signal | None], threshold: int) -> Score:
    fired = tuple(s for s in signals if s is not None)
    return Score(min(MAX_SCORE, sum(s.points for s in fired)), fired, threshold)


def score_customer(h: CustomerHistory, norm: BrandNorm, linked: Sequence[LinkedAccount],
                   t: Thresholds) -> Score:
    """The customer-level score: the signals that do not depend on one return."""
    return _total([return_rate_signal(h, norm, t), refund_velocity_signal(h, t),
                   linked_accounts_signal(linked, t), bypassed_queue_signal(h, t),
                   chargebacks_signal(h, t)], t.review_score)


def score_return(f: ReturnFacts, h: CustomerHistory, norm: BrandNorm,
                 linked: Sequence[LinkedAccount], t: Thresholds) -> Score:
    customer = score_customer(h, norm, linked, t)
    own: list[Callable[[], Signal | None]] = [
        lambda: return_value_signal(f, h, norm, t), lambda: wardrobing_signal(f, t),
        lambda: serial_mismatch_signal(f, t)]
    return _total([*customer.signals, *(check() for check in own)], t.review_score)
