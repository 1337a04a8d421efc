from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from dropline.memberships.rules import (
    EndReason,
    Interval,
    MemberPriceKind,
    MembershipStatus,
    OutOfStockPolicy,
    Segment,
    SubsidyKind,
)
from dropline.orders.schemas import AddressIn
from dropline.schemas import (
    Amount,
    Currency,
    Id,
    Input,
    Instant,
    Name,
    Output,
    PaymentInput,
    PaymentMethodRef,
    PositiveAmount,
    Slug,
)

Minutes = Annotated[int, Field(ge=0, le=60 * 24 * 30, description="minutes")]


class TierCreate(Input):
    slug: Slug
    name: Name
    description: str = Field("", max_length=1000)
    interval: Interval
    price_amount: PositiveAmount
    currency: Currency
    cap: int | None = Field(None, ge=0, le=10_000_000, description="spots; none: no cap")
    trial_days: int = Field(0, ge=0, le=365)
    member_price_kind: MemberPriceKind = MemberPriceKind.none
    member_price_value: int = Field(0, ge=0, le=10**11,
                                    description="percent off (0-100), or minor units off")
    early_access_minutes: Minutes = 0
    delivery_subsidy_kind: SubsidyKind = SubsidyKind.none
    delivery_subsidy_amount: Amount = 0
    consumable_variant_id: Id | None = None
    consumable_quantity: int = Field(0, ge=0, le=100)
    out_of_stock_policy: OutOfStockPolicy = OutOfStockPolicy.skip

    @model_validator(mode="after")
    def percent_in_range(self) -> TierCreate:
        if self.member_price_kind is MemberPriceKind.percent and self.member_price_value > 100:
            raise ValueError("a percentage member price is at most 100")
        return self


class TierRead(Output):
    id: int
    slug: str
    name: str
    description: str
    interval: Interval
    price_amount: int
    currency: str
    cap: int | None
    spots_left: int | None
    trial_days: int
    member_price_kind: MemberPriceKind
    member_price_value: int
    early_access_minutes: int
    delivery_subsidy_kind: SubsidyKind
    delivery_subsidy_amount: int
    consumable_variant_id: int | None
    consumable_quantity: int
    out_of_stock_policy: OutOfStockPolicy
    active: bool


class MembershipCreate(PaymentInput):
    tier_id: Id
    payment_method: PaymentMethodRef
    shipping_address: AddressIn | None = None


class MembershipRead(Output):
    id: int
    customer_id: int
    tier_id: int
    tier_slug: str
    tier_name: str
    status: MembershipStatus
    current_period_start: datetime
    current_period_end: datetime
    trial_end: datetime | None
    cancel_at_period_end: bool
    credit_amount: int
    currency: str
    card_last4: str | None
    segment: str | None
    segment_reason: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: EndReason | None
    grace_until: datetime | None
    resume_at: datetime | None


class TierChange(Input):
    tier_id: Id


class ChangePreview(Output):
    from_tier: str
    to_tier: str
    credit_amount: int
    charge_amount: int
    net_amount: int
    currency: str
    restarts_period: bool


class PauseCreate(Input):
    resume_at: Instant | None = None


class PaymentMethodUpdate(PaymentInput):
    payment_method: PaymentMethodRef


class PollCreate(Input):
    question: str = Field(min_length=1, max_length=300)
    options: list[Name] = Field(min_length=2, max_length=20)
    segment: Segment | None = None
    tier_id: Id | None = None
    opens_at: Instant | None = None
    closes_at: Instant


class PollRead(Output):
    id: int
    question: str
    options: list[str]
    segment: str | None
    tier_id: int | None
    opens_at: datetime
    closes_at: datetime
    counts: list[int] | None = None
    votes: int | None = None


class VoteCreate(Input):
    option: int = Field(ge=0, le=19, description="index into the poll's options")


class SegmentRulesUpdate(Input):
    founding_window_days: int | None = Field(None, ge=0, le=3650)
    founding_min_monthly_spend: int | None = Field(None, ge=0, le=10**11)
    lookback_days: int | None = Field(None, ge=1, le=3650)
    utility_min_orders: int | None = Field(None, ge=1, le=1000)
    utility_max_gap_cv: float | None = Field(None, ge=0, le=100)
    utility_min_consumable_share: float | None = Field(None, ge=0, le=1)
    consumable_families: list[Slug] | None = Field(None, max_length=50)
    event_window_days: int | None = Field(None, ge=0, le=60)


Sku = Annotated[str, Field(min_length=1, max_length=64)]


class TierMixUpdate(Input):
    pool: list[Sku] = Field(default_factory=list, max_length=100,
                            description="SKUs the mix is chosen from")
    size: int = Field(ge=0, le=20, description="items a period; 0 turns the mix off")
    no_repeat: int = Field(0, ge=0, le=24,
                           description="no item again to a member within this many periods")


class MixPreferencesUpdate(Input):
    prefer: list[Sku] = Field(default_factory=list, max_length=50)
    avoid: list[Sku] = Field(default_factory=list, max_length=50)


class OnboardingStepIn(Input):
    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=4000)
    day: int | None = Field(None, ge=0, le=30, description="sent this many days after joining")
    event: str | None = Field(None, max_length=64,
                              description="or reached at the member's first such event")
    completes_on: str | None = Field(
        None, max_length=64, description="a day step done by this event (a nudge on its day "
                                         "only if not done)")
    channel: str = Field("email", pattern=r"^(email|account)$")


class OnboardingFlowIn(Input):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    tier: Slug | None = None
    segment: str | None = Field(None, max_length=16)
    holdout_share: float = Field(0.0, ge=0, le=0.5,
                                 description="share of new members held out (the control)")
    steps: list[OnboardingStepIn] = Field(min_length=1, max_length=20)


class OnboardingFlowsUpdate(Input):
    flows: list[OnboardingFlowIn] = Field(max_length=20,
                                          description="the whole set; [] restores the default")


class TierFiguresRead(Output):
    slug: str
    name: str
    live: int
    paying: int
    trialing: int
    paused: int
    mrr: int


class MetricsRead(Output):
    currency: str
    mrr: int
    tiers: list[TierFiguresRead]
    since: datetime
    until: datetime
    members_at_start: int
    churned_voluntary: int
    churned_failed_payment: int
    churn_rate: float | None
    trials_ended: int
    trials_converted: int
    trial_conversion: float | None


class CohortCellRead(Output):
    segment: str
    join_month: str
    members: int
    active: int
    revenue: int
    retention: dict[str, float | None]
