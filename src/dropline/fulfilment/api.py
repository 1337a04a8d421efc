"""Fulfilment API: delivery options for shoppers; network, rules, windows, route plans and
stock movements for the brand (scope ``fulfilment:manage``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.carts.models import Cart, CartLine
from dropline.catalog.service import get_location_by_code
from dropline.errors import InvalidInput, NotFound
from dropline.fulfilment import positioning as P
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment.decision_tree import tree_html, tree_markdown, tree_svg
from dropline.fulfilment.jobs import run_fulfilment_jobs
from dropline.fulfilment.models import FulfilmentSite, MovementKind
from dropline.fulfilment.planning import RouteSheet, plan_window_apart, route_sheet
from dropline.fulfilment.ports import Geocoder, RouteSolver
from dropline.fulfilment.routemap import route_map_svg
from dropline.fulfilment.stocking import (
    PositioningPlan,
    accept_positioning,
    cost_report,
    plan_positioning,
)
from dropline.fulfilment.schemas import (
    AddressRead,
    BookingCreate,
    BookingRead,
    CentralOptionRead,
    CostRowRead,
    DecisionRead,
    DeliveryOptionsRead,
    JobsRead,
    MovementCreate,
    MovementRead,
    PlanCreate,
    PositioningIn,
    PositioningRead,
    PositionTargetRead,
    ProposalRead,
    RateCardPut,
    RateRead,
    RouteSheetRead,
    RuleRead,
    RulesPut,
    SitePut,
    SiteRead,
    VehicleCreate,
    VehicleRead,
    WindowOptionRead,
    WindowRead,
    WindowsCreate,
)
from dropline.locations.models import Location
from dropline.orders.models import Order
from dropline.schemas import IdPath, Instant
from dropline.web.deps import (
    ClockDep,
    DatabaseDep,
    OptionalCustomer,
    Principal,
    ServicesDep,
    SessionDep,
    SettingsDep,
    admin,
)

router = APIRouter(tags=["fulfilment"])
Manager = Annotated[Principal, admin("fulfilment:manage")]
PREFIX = "/admin/fulfilment"


def get_geocoder(services: ServicesDep) -> Geocoder:
    return services.geocoder


def get_solver(services: ServicesDep) -> RouteSolver:
    return services.solver


GeocoderDep = Annotated[Geocoder, Depends(get_geocoder)]
SolverDep = Annotated[RouteSolver, Depends(get_solver)]
LineParam = Annotated[str, Query(pattern=r"^[1-9][0-9]{0,14}x[1-9][0-9]{0,2}$")]


def _cart_lines(session: Session, cart_id: str, customer_id: int | None
                ) -> list[service.LineRequest]:
    # Read-only: the same visibility rule as carts.service.load_cart, without claiming a guest
    # cart (a GET changes nothing).
    cart = session.get(Cart, cart_id)
    if cart is None or (cart.customer_id is not None and cart.customer_id != customer_id):
        raise NotFound(f"cart {cart_id} not found")
    return [service.LineRequest(line.variant_id, line.quantity) for line in session.scalars(
        select(CartLine).where(CartLine.cart_id == cart.id).order_by(CartLine.variant_id))]


@router.get("/delivery-options", response_model=DeliveryOptionsRead,
            summary="Ways a cart (or lines) can reach an address, with the decision",
            responses={404: {"description": "Unknown cart or variant"}})
def delivery_options(
    session: SessionDep, clock: ClockDep, settings: SettingsDep, geocoder: GeocoderDep,
    customer: OptionalCustomer,
    cart_id: Annotated[str | None, Query(max_length=36)] = None,
    line: Annotated[list[LineParam] | None, Query(
        max_length=50, description="variant_id x quantity, e.g. 12x2 (repeat)")] = None,
    postcode: Annotated[str | None, Query(min_length=2, max_length=10)] = None,
    latitude: Annotated[float | None, Query(ge=-90, le=90, allow_inf_nan=False)] = None,
    longitude: Annotated[float | None, Query(ge=-180, le=180, allow_inf_nan=False)] = None,
    required_by: Annotated[Instant | None, Query()] = None,
) -> DeliveryOptionsRead:
    """Lists central shipping and the hub windows that can still take the order, each with
    its price; "green" windows are cheaper because a van already goes nearby. Postcodes are
    placed at an approximate London district centre (``address.approximate``); send latitude
    and longitude for anything else."""
    if (cart_id is None) == (not line):
        raise InvalidInput("give either cart_id or line (not both)", field="cart_id")
    if cart_id is not None:
        lines = _cart_lines(session, cart_id, customer.id if customer else None)
        if not lines:
            raise InvalidInput("the cart is empty", field="cart_id")
    else:
        lines = [service.LineRequest(int(v), int(q)) for v, q in
                 (item.split("x") for item in line or [])]
    destination = service.resolve_destination(geocoder=geocoder, latitude=latitude,
                                              longitude=longitude, postcode=postcode)
    decision, options = service.decide_with_options(
        session, lines=lines, destination=destination, at=clock.now(), required_by=required_by,
        steering=service.Steering() if settings.fulfilment.steering else None)
    central = next((o for o in options.options if o.path == "central" and o.eligible), None)
    windows = service.window_options(session, options.options)
    return DeliveryOptionsRead(
        currency=options.currency,
        address=AddressRead(latitude=destination.point.latitude,
                            longitude=destination.point.longitude, label=destination.label,
                            approximate=destination.approximate),
        decision=decision_read(decision),
        central=CentralOptionRead(
            location_code=central.location_code, price_amount=settings.shop.flat_shipping_amount,
            cost_amount=central.cost_amount, promise_at=central.promise_at,
            zone=central.breakdown[1][0].removeprefix("carrier ")) if central else None,
        windows=[WindowOptionRead(**w) for w in windows],
    )


def decision_read(decision: R.Decision) -> DecisionRead:
    chosen = decision.chosen
    return DecisionRead(
        path=chosen.path, location_code=chosen.location_code, window_id=chosen.window_id,
        cost_amount=chosen.cost_amount,
        central_cost_amount=decision.central.cost_amount if decision.central else None,
        hub_cost_amount=decision.hub.cost_amount if decision.hub else None,
        rule=decision.rule, explanation=decision.explanation, promise_at=chosen.promise_at,
        promise_met=decision.promise_met)


# --- rules and the decision tree ------------------------------------------------------------


def rule_reads(rules: list[R.Rule]) -> list[RuleRead]:
    return [RuleRead(**R.rule_to_data(rule), description=R.describe_rule(rule))
            for rule in rules]


@router.get(f"{PREFIX}/rules", response_model=list[RuleRead], summary="The brand's rules")
def get_rules(session: SessionDep, _: Manager) -> list[RuleRead]:
    return rule_reads(service.load_rules(session))


@router.put(f"{PREFIX}/rules", response_model=list[RuleRead],
            summary="Replace the brand's rules (tried in order)")
def put_rules(body: RulesPut, session: SessionDep, clock: ClockDep,
              principal: Manager) -> list[RuleRead]:
    rules = service.replace_rules(session, clock=clock, actor=principal.key,
                                  rules=[r.model_dump() for r in body.rules])
    return rule_reads(rules)


@router.get(f"{PREFIX}/decision-tree", summary="The one-page decision tree from the rules",
            responses={200: {"content": {"text/markdown": {}, "image/svg+xml": {},
                                         "text/html": {}}}})
def decision_tree(session: SessionDep, _: Manager, settings: SettingsDep,
                  format: Literal["markdown", "svg", "html"] = "markdown") -> Response:
    rules = service.load_rules(session)
    title = f"Fulfilment decision tree — {settings.shop.name}"
    if format == "svg":
        return Response(tree_svg(rules, title=title), media_type="image/svg+xml")
    if format == "html":
        return HTMLResponse(tree_html(rules, title=title))
    return PlainTextResponse(tree_markdown(rules, title=title), media_type="text/markdown")


# --- the network ----------------------------------------------------------------------------


def site_read(session: Session, site: FulfilmentSite) -> SiteRead:
    location = session.get(Location, site.location_id)
    assert location is not None
    return SiteRead.model_validate({**{k: getattr(site, k) for k in SiteRead.model_fields
                                       if hasattr(site, k)},
                                    "location_code": location.code,
                                    "kind": location.kind.value})


@router.get(f"{PREFIX}/sites", response_model=list[SiteRead], summary="Sites and their costs")
def list_sites(session: SessionDep, _: Manager) -> list[SiteRead]:
    return [site_read(session, s) for s in session.scalars(
        select(FulfilmentSite).order_by(FulfilmentSite.location_id))]


@router.put(f"{PREFIX}/sites/{{code}}", response_model=SiteRead,
            summary="Set a location's fulfilment costs and hours")
def put_site(code: Annotated[str, Path(max_length=32)], body: SitePut,
             session: SessionDep, clock: ClockDep, _: Manager) -> SiteRead:
    values = body.model_dump(exclude_none=True)
    site = service.configure_site(session, clock=clock, location_code=code, **values)
    return site_read(session, site)


@router.put(f"{PREFIX}/rate-card", response_model=list[RateRead],
            summary="Replace the carrier's rate card (zone by distance band, weight step)")
def put_rate_card(body: RateCardPut, session: SessionDep, _: Manager) -> list[RateRead]:
    service.set_rate_card(session, rates=[R.CarrierRate(**r.model_dump()) for r in body.rates])
    return [RateRead.model_validate(r, from_attributes=True) for r in service.rate_card(session)]


@router.post(f"{PREFIX}/vehicles", response_model=VehicleRead,
             status_code=status.HTTP_201_CREATED, summary="Add a vehicle to a hub")
def create_vehicle(body: VehicleCreate, session: SessionDep, _: Manager) -> VehicleRead:
    vehicle = service.add_vehicle(session, location_code=body.location, name=body.name,
                                  capacity_grams=body.capacity_grams,
                                  shift_start=body.shift_start, shift_end=body.shift_end,
                                  cost_per_km_amount=body.cost_per_km_amount,
                                  cost_per_hour_amount=body.cost_per_hour_amount)
    return VehicleRead.model_validate(vehicle)


@router.get(f"{PREFIX}/vehicles", response_model=list[VehicleRead], summary="List vehicles")
def get_vehicles(session: SessionDep, _: Manager) -> list[VehicleRead]:
    return [VehicleRead.model_validate(v) for v in service.list_vehicles(session)]


# --- windows, bookings and plans ------------------------------------------------------------


@router.post(f"{PREFIX}/windows", response_model=list[WindowRead],
             status_code=status.HTTP_201_CREATED,
             summary="Slot a hub's day into delivery windows (idempotent)")
def create_windows(body: WindowsCreate, session: SessionDep, _: Manager) -> list[WindowRead]:
    windows = service.create_windows(session, location_code=body.location, day=body.day,
                                     window_minutes=body.window_minutes,
                                     capacity=body.capacity, cutoff_minutes=body.cutoff_minutes)
    return [WindowRead.model_validate(w) for w in windows]


@router.get(f"{PREFIX}/windows", response_model=list[WindowRead], summary="List windows",
            responses={404: {"description": "No location has that code"}})
def get_windows(
    session: SessionDep, _: Manager,
    location: Annotated[str | None, Query(max_length=32)] = None,
    starting_from: Annotated[Instant | None, Query(alias="from")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[WindowRead]:
    location_id = None
    if location is not None:
        location_id = get_location_by_code(session, location).id
    return [WindowRead.model_validate(w) for w in service.list_windows(
        session, location_id=location_id, starting_from=starting_from, limit=limit)]


@router.post(f"{PREFIX}/windows/{{window_id}}/bookings", response_model=BookingRead,
             status_code=status.HTTP_201_CREATED, summary="Book an order into a window")
def create_booking(window_id: IdPath, body: BookingCreate, session: SessionDep,
                   clock: ClockDep, geocoder: GeocoderDep, _: Manager) -> BookingRead:
    order = session.get(Order, body.order_id)
    if order is None:
        raise NotFound(f"order {body.order_id} not found", field="order_id")
    destination = service.resolve_destination(geocoder=geocoder, latitude=body.latitude,
                                              longitude=body.longitude, postcode=body.postcode)
    booking = service.book_window(session, clock=clock, window_id=window_id,
                                  order_id=order.id, destination=destination,
                                  weight_grams=body.weight_grams
                                  or service.order_weight(session, order.id))
    return BookingRead.model_validate(booking)


@router.post(f"{PREFIX}/windows/{{window_id}}/plan", response_model=RouteSheetRead,
             summary="Plan a window's routes now (normally done at cutoff by the worker)")
def plan(window_id: IdPath, body: PlanCreate, db: DatabaseDep, clock: ClockDep,
         solver: SolverDep, _: Manager) -> RouteSheetRead:
    # No request-wide transaction: the solver runs with none open (plan_window_apart).
    plan_window_apart(db, clock=clock, window_id=window_id, solver=solver,
                      max_seconds=body.max_seconds, seed=body.seed, replan=body.replan)
    with db.transaction() as session:
        return sheet_read(route_sheet(session, window_id=window_id))


def sheet_read(sheet: RouteSheet) -> RouteSheetRead:
    return RouteSheetRead.model_validate(sheet, from_attributes=True)


@router.get(f"{PREFIX}/windows/{{window_id}}/route-sheet", response_model=RouteSheetRead,
            summary="A planned window's route sheet: stop order, ETAs, load")
def get_route_sheet(window_id: IdPath, session: SessionDep, _: Manager) -> RouteSheetRead:
    return sheet_read(route_sheet(session, window_id=window_id))


@router.get(f"{PREFIX}/windows/{{window_id}}/route-map.svg",
            summary="A planned window's route map (SVG)",
            responses={200: {"content": {"image/svg+xml": {}}}})
def get_route_map(window_id: IdPath, session: SessionDep, _: Manager) -> Response:
    return Response(route_map_svg(route_sheet(session, window_id=window_id)),
                    media_type="image/svg+xml")


# --- stock movements and jobs ---------------------------------------------------------------


@router.post(f"{PREFIX}/movements", response_model=MovementRead,
             status_code=status.HTTP_201_CREATED,
             summary="Start a transfer or a micro-factory production run")
def create_movement(body: MovementCreate, session: SessionDep, clock: ClockDep,
                    _: Manager) -> MovementRead:
    movement = service.start_movement(
        session, clock=clock, kind=MovementKind(body.kind), source_code=body.source,
        destination_code=body.destination, variant_id=body.variant_id,
        quantity=body.quantity, lead_hours=body.lead_hours)
    return MovementRead.model_validate(movement)


@router.get(f"{PREFIX}/movements", response_model=list[MovementRead],
            summary="Recent transfers and production runs")
def get_movements(session: SessionDep, _: Manager) -> list[MovementRead]:
    return [MovementRead.model_validate(m) for m in service.list_movements(session)]


@router.post(f"{PREFIX}/jobs/run", response_model=JobsRead,
             summary="Run the due fulfilment jobs now (complete movements, plan due windows)")
def run_jobs(db: DatabaseDep, clock: ClockDep, solver: SolverDep, _: Manager) -> JobsRead:
    report = run_fulfilment_jobs(db, clock=clock, solver=solver)
    return JobsRead.model_validate(report, from_attributes=True)



# --- stock where demand is, and what fulfilment costs ----------------------------------------


def _positioning(session: Session, clock: ClockDep, geocoder: Geocoder,
                 body: PositioningIn) -> PositioningPlan:
    drop = P.DropDemand(estimate={int(k): float(v) for k, v in body.drop_estimate.items()},
                        cap={int(k): v for k, v in body.drop_cap.items()}) \
        if body.drop_estimate else None
    return plan_positioning(session, clock=clock, geocoder=geocoder, days=body.days,
                            cover_days=body.cover_days, safety=body.safety, drop=drop)


def _positioning_read(plan: PositioningPlan) -> PositioningRead:
    return PositioningRead(
        orders_read=plan.orders_read, orders_in_reach=plan.orders_in_reach,
        targets=[PositionTargetRead.model_validate(t, from_attributes=True)
                 for t in plan.targets],
        proposals=[ProposalRead(number=n, kind=p.kind, source=p.source,
                                destination=p.destination, variant_id=p.variant_id,
                                quantity=p.quantity, lead_hours=p.lead_hours,
                                arrives_at=p.arrives_at, late=p.late)
                   for n, p in enumerate(plan.proposals, start=1)])


@router.post(f"{PREFIX}/positioning", response_model=PositioningRead,
             summary="The positioning plan: units per hub and variant, and the transfers and "
                     "production runs that would get them there (changes nothing)")
def positioning_plan(body: PositioningIn, session: SessionDep, clock: ClockDep,
                     geocoder: GeocoderDep, _: Manager) -> PositioningRead:
    return _positioning_read(_positioning(session, clock, geocoder, body))


@router.post(f"{PREFIX}/positioning/accept", response_model=list[MovementRead],
             status_code=status.HTTP_201_CREATED,
             summary="Accept the positioning plan's proposals as stock movements")
def positioning_accept(body: PositioningIn, session: SessionDep, clock: ClockDep,
                       geocoder: GeocoderDep, _: Manager) -> list[MovementRead]:
    plan = _positioning(session, clock, geocoder, body)
    movements = accept_positioning(session, clock=clock, plan=plan,
                                   only=set(body.only) if body.only is not None else None)
    return [MovementRead.model_validate(m) for m in movements]


@router.get(f"{PREFIX}/costs", response_model=list[CostRowRead],
            summary="Fulfilment cost per order by ISO week, path and location")
def get_costs(session: SessionDep, clock: ClockDep, _: Manager,
              weeks: Annotated[int, Query(ge=1, le=104)] = 4) -> list[CostRowRead]:
    now = clock.now()
    rows = cost_report(session, since=now - timedelta(weeks=weeks),
                       until=now + timedelta(seconds=1))
    return [CostRowRead(week=r.week, path=r.path, location=r.location_code, orders=r.orders,
                        cost_amount=r.cost_amount, cost_per_order=round(r.cost_per_order, 1),
                        routed_orders=r.routed_orders) for r in rows]
