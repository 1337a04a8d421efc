"""Pydantic I/O of the risk domain (XCreate / XRead families)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from dropline.catalog.models import ConditionGrade
from dropline.risk.models import ReturnOutcome, ReturnStatus
from dropline.schemas import Amount, Id, Input, Output, PositiveAmount, ShortText

Serial = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                          pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]
Code = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Note = Annotated[str, StringConstraints(max_length=500)]


class ReturnCreate(Input):
    """Name the line by its id, or by the variant bought (an order has one line a variant)."""

    order_line_id: Id | None = None
    variant_id: Id | None = None
    quantity: int = Field(default=1, ge=1, le=1000)
    reason: str = Field(max_length=32, examples=["changed-mind"])
    note: Note = ""
    preferred_outcome: ReturnOutcome = ReturnOutcome.refund
    exchange_variant_id: Id | None = None


class ReturnRead(Output):
    id: int
    order_id: int
    order_line_id: int
    customer_id: int
    quantity: int
    reason: str
    note: str
    preferred_outcome: ReturnOutcome
    exchange_variant_id: int | None
    status: ReturnStatus
    requested_at: datetime
    received_at: datetime | None
    received_grade: str | None
    serial_received: str | None
    location_id: int | None
    restock_variant_id: int | None
    outcome: ReturnOutcome | None
    gross_amount: int | None
    fee_amount: int | None
    refund_amount: int | None
    refund_id: int | None
    decided_at: datetime | None


class ReceiveCreate(Input):
    grade: ConditionGrade
    location_code: Code
    serial: Serial | None = None


class DecisionCreate(Input):
    decision: Literal["approve", "deny"]
    note: Note = ""
    outcome: ReturnOutcome | None = None
    refund_amount: Amount | None = Field(default=None, description="partial refund, minor units")
    waive_fee: bool = False


class RefundPay(Input):
    """No fields: the amount was fixed when the return was approved."""


class SerialsAssign(Input):
    order_line_id: Id | None = None
    variant_id: Id | None = None
    serials: list[Serial] = Field(min_length=1, max_length=100)


class SerialsRegister(Input):
    variant_id: Id
    location_code: Code
    serials: list[Serial] = Field(min_length=1, max_length=500)


class SerialRead(Output):
    id: int
    serial: str
    variant_id: int
    status: str
    order_id: int | None
    order_line_id: int | None
    grade: str


class ChargebackCreate(Input):
    order_id: Id
    amount: PositiveAmount
    reason: ShortText = ""


class ChargebackRead(Output):
    id: int
    order_id: int
    customer_id: int
    amount: int
    currency: str
    reason: str
    reported_at: datetime
    actor: str


class PolicyUpdate(Input):
    variant_id: Id | None = None
    window_days: int | None = Field(default=None, ge=0, le=3650)
    final_sale: bool = False
    restocking_fee_bps: int | None = Field(default=None, ge=0, le=10_000)


class PolicyRead(Output):
    id: int
    product_id: int
    variant_id: int | None
    window_days: int | None
    final_sale: bool
    restocking_fee_bps: int | None


class SignalRead(Output):
    name: str
    points: int
    reason: str


class DecisionRead(Output):
    decision: str
    actor: str
    reasons: list[str]
    note: str
    decided_at: datetime


class CaseRead(Output):
    id: int
    return_id: int
    customer_id: int
    score: int
    threshold: int
    status: str
    signals: list[SignalRead]
    created_at: datetime
    decided_at: datetime | None
    decisions: list[DecisionRead] = Field(default_factory=list)


class CustomerScoreRead(Output):
    customer_id: int
    score: int
    threshold: int
    needs_review: bool
    signals: list[SignalRead]


class SettingsUpdate(Input):
    values: dict[str, Any] = Field(min_length=1, max_length=30)


class AuditRead(Output):
    id: int
    occurred_at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    changes: dict[str, Any]
