"""Fulfilment API schemas (Pydantic I/O; the tables are in ``models.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from dropline.fulfilment.rules import MAX_PREMIUM_AMOUNT
from dropline.schemas import Amount, Day, Id, Input, Name, Output, TimeOfDay

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Postcode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=10)]
ConditionValue = (bool | Annotated[int, Field(ge=-10**12, le=10**12)]
                  | Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]
                  | Annotated[str, StringConstraints(max_length=64)]
                  | Annotated[list[Annotated[str, StringConstraints(max_length=64)] | int],
                              Field(min_length=1, max_length=50)])


# --- rules ----------------------------------------------------------------------------------


class ConditionIn(Input):
    field: Literal["distance_to_hub_km", "member_delivery_subsidy", "is_member",
                   "weight_grams", "subtotal_amount", "central_zone"]
    op: Literal["lt", "le", "gt", "ge", "eq", "ne", "in"]
    value: ConditionValue


class RuleIn(Input):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=20)
    action: Literal["prefer-hub", "prefer-central"]
    max_premium_amount: Annotated[int, Field(ge=0, le=MAX_PREMIUM_AMOUNT, description=(
        "integer minor units"))] | None = None
    enabled: bool = True


class RulesPut(Input):
    rules: list[RuleIn] = Field(max_length=50)


class RuleRead(Output):
    name: str
    conditions: list[dict[str, object]]
    action: str
    max_premium_amount: int | None
    enabled: bool
    description: str


# --- the network ----------------------------------------------------------------------------


class SitePut(Input):
    handling_amount: Amount | None = None
    opening_hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        Annotated[list[Annotated[str, StringConstraints(max_length=5)]],
                                  Field(min_length=2, max_length=2)]] | None = None
    service_radius_m: Annotated[int, Field(ge=0, le=100_000)] | None = None
    speed_kmh: Annotated[float, Field(ge=1, le=150, allow_inf_nan=False)] | None = None
    detour_factor: Annotated[float, Field(ge=1, le=3, allow_inf_nan=False)] | None = None
    service_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    window_price_amount: Amount | None = None
    green_price_amount: Amount | None = None
    dispatch_cutoff_hour: Annotated[int, Field(ge=0, le=23)] | None = None


class SiteRead(Output):
    location_id: int
    location_code: str
    kind: str
    handling_amount: int
    opening_hours: dict[str, list[str]]
    service_radius_m: int
    speed_kmh: float
    detour_factor: float
    service_seconds: int
    window_price_amount: int
    green_price_amount: int
    dispatch_cutoff_hour: int


class RateIn(Input):
    zone: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    max_distance_km: Annotated[float, Field(gt=0, le=40_000, allow_inf_nan=False)]
    max_weight_grams: Annotated[int, Field(ge=1, le=1_000_000)]
    amount: Amount
    transit_days: Annotated[int, Field(ge=0, le=30)] = 1


class RateCardPut(Input):
    rates: list[RateIn] = Field(min_length=1, max_length=200)


class RateRead(Output):
    zone: str
    max_distance_km: float
    max_weight_grams: int
    amount: int
    transit_days: int


class VehicleCreate(Input):
    location: Code
    name: Name
    capacity_grams: Annotated[int, Field(ge=1, le=10_000_000)]
    shift_start: TimeOfDay
    shift_end: TimeOfDay
    cost_per_km_amount: Amount
    cost_per_hour_amount: Amount


class VehicleRead(Output):
    id: int
    location_id: int
    name: str
    capacity_grams: int
    shift_start: TimeOfDay
    shift_end: TimeOfDay
    cost_per_km_amount: int
    cost_per_hour_amount: int
    active: bool


# --- windows, bookings, plans ---------------------------------------------------------------


class WindowsCreate(Input):
    location: Code
    day: Day
    window_minutes: Annotated[int, Field(ge=15, le=720)] = 120
    capacity: Annotated[int, Field(ge=1, le=10_000)] = 40
    cutoff_minutes: Annotated[int, Field(ge=0, le=2880)] = 120


class WindowRead(Output):
    id: int
    location_id: int
    starts_at: datetime
    ends_at: datetime
    cutoff_at: datetime
    capacity: int
    booked: int
    status: str


class BookingCreate(Input):
    order_id: Id
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    postcode: Postcode | None = None
    weight_grams: Annotated[int, Field(ge=1, le=10_000_000)] | None = None


class BookingRead(Output):
    id: int
    window_id: int
    order_id: int
    latitude: float
    longitude: float
    weight_grams: int
    label: str
    status: str
    booked_at: datetime


class PlanCreate(Input):
    max_seconds: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 5.0
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    replan: bool = False


class SheetStopRead(Output):
    position: int
    booking_id: int
    order_id: int
    label: str
    latitude: float
    longitude: float
    eta: datetime
    weight_grams: int


class SheetRouteRead(Output):
    number: int
    vehicle: str
    departs_at: datetime
    returns_at: datetime
    load_grams: int
    capacity_grams: int
    distance_m: int
    cost_amount: int
    stops: list[SheetStopRead]


class RouteSheetRead(Output):
    window_id: int
    hub_code: str
    hub_name: str
    starts_at: datetime
    ends_at: datetime
    planned_at: datetime
    solver: str
    cost_amount: int
    distance_m: int
    duration_s: int
    feasible: bool
    routes: list[SheetRouteRead]
    unassigned: list[SheetStopRead]


class MovementCreate(Input):
    kind: Literal["transfer", "production"]
    source: Code
    destination: Code
    variant_id: Id
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]
    lead_hours: Annotated[float, Field(ge=0, le=2160, allow_inf_nan=False)] = 48.0


class MovementRead(Output):
    id: int
    kind: str
    source_location_id: int
    destination_location_id: int
    variant_id: int
    quantity: int
    status: str
    started_at: datetime
    due_at: datetime
    completed_at: datetime | None


class JobsRead(Output):
    movements_completed: list[int]
    windows_planned: list[int]
    windows_failed: list[int]


# --- delivery options -----------------------------------------------------------------------


class AddressRead(Output):
    latitude: float
    longitude: float
    label: str
    approximate: bool = Field(description="true when placed at a postcode district's "
                                          "approximate centre, not the door")


class DecisionRead(Output):
    path: str
    location_code: str
    window_id: int | None
    cost_amount: int
    central_cost_amount: int | None
    hub_cost_amount: int | None
    rule: str
    explanation: str
    promise_at: datetime
    promise_met: bool


class CentralOptionRead(Output):
    location_code: str
    price_amount: int
    cost_amount: int
    promise_at: datetime
    zone: str


class WindowOptionRead(Output):
    window_id: int
    hub: str
    starts_at: datetime
    ends_at: datetime
    price_amount: int
    cost_amount: int
    green: bool
    label: str
    remaining: int


class DeliveryOptionsRead(Output):
    currency: str
    address: AddressRead | None
    decision: DecisionRead
    central: CentralOptionRead | None
    windows: list[WindowOptionRead]



# --- stock where demand is, costs -------------------------------------------------------------

VariantUnits = Annotated[dict[Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,14}$")],
                              Annotated[int, Field(ge=0, le=10**9)]], Field(max_length=500)]


class PositioningIn(Input):
    days: Annotated[int, Field(ge=1, le=365)] = 28
    cover_days: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 2.0
    safety: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False)] = 1.3
    drop_estimate: VariantUnits = Field(default_factory=dict, description=(
        "a coming drop: the planner's estimate of units per variant id"))
    drop_cap: VariantUnits = Field(default_factory=dict, description="the drop's cap per variant")
    only: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, max_length=1000,
                                                           description=(
        "accept: only these 1-based proposal numbers (all when absent)"))


class PositionTargetRead(Output):
    hub: str
    variant_id: int
    daily_units: float
    target: int
    on_hand: int
    in_transit: int


class ProposalRead(Output):
    number: int
    kind: Literal["transfer", "production"]
    source: str
    destination: str
    variant_id: int
    quantity: int
    lead_hours: float
    arrives_at: datetime
    late: bool


class PositioningRead(Output):
    orders_read: int
    orders_in_reach: int
    targets: list[PositionTargetRead]
    proposals: list[ProposalRead]


class CostRowRead(Output):
    week: str
    path: str
    location: str
    orders: int
    cost_amount: int = Field(description="integer minor units")
    cost_per_order: float = Field(description="minor units")
    routed_orders: int = Field(description="hub-window orders costed from planned routes")
