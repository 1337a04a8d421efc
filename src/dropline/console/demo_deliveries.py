"""Demo story, part two: today's deliveries, so the fulfilment page and its route sheets show
a working day.

For each hub, a handful of orders placed since yesterday evening by customers who live within
a couple of kilometres (their postcode's district centre, by the demo's London geocoder, is in
reach; the door is placed within ``DOOR_KM`` of that centre, so address, postcode and
coordinates agree: no Cardiff postcode on a Clapham cargo bike); each goes through the real fulfilment decision (the brand's rules,
stock, windows, cost) at the moment it was placed, the decision is recorded, and a hub-window
decision books its window. Windows whose cutoff has passed are routed (as the planning job
would); if none has yet, each hub's first window with stops is routed early, so a route
sheet exists at any hour.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dropline.adapters.geocoding import LondonDistrictGeocoder
from dropline.adapters.routing import NearestNeighbourSolver
from dropline.catalog.models import Product, ProductFamily, Variant
from dropline.clock import FrozenClock
from dropline.demo import DemoContext
from dropline.demo.shoppers import PAYMENT_PROVIDER, _insert_returning_ids
from dropline.errors import DomainError
from dropline.fulfilment import rules as R
from dropline.fulfilment import service as fulfilment
from dropline.fulfilment.models import DeliveryWindow, RoutePlanRow, WindowBooking
from dropline.fulfilment.planning import plan_window
from dropline.locations.models import Location, LocationKind, StockLevel
from dropline.memberships.models import Membership
from dropline.memberships.perks import active_tier, delivery_subsidy
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import order_event_payload
from dropline.payments.models import Payment, PaymentStatus
from dropline.pricing import PricedLine, order_totals

LONDON = ZoneInfo("Europe/London")
ORDERS_PER_HUB = 7
RADIUS_KM = 2.6  # some beyond the 2 km rule: they fall to the cost comparison
DOOR_KM = 0.5  # a door within this of its postcode district's centre


def seed_deliveries(ctx: DemoContext) -> str:
    session = ctx.session
    today = ctx.now.astimezone(LONDON).date()
    hubs = list(session.scalars(select(Location).where(
        Location.kind == LocationKind.micro_hub).order_by(Location.code)))
    customers = list(ctx.ids.customers.items())
    if not hubs or not customers:
        return "no hubs or customers"
    members = [(c, ctx.ids.customers[c]) for c in _member_ids(ctx) if c in ctx.ids.customers]
    geocoder = LondonDistrictGeocoder()
    homes = {c: point for c, shopper in customers
             if (point := geocoder.locate(shopper.postcode)) is not None}
    decisions = booked = 0
    for hub in hubs:
        windows = [w for w in session.scalars(select(DeliveryWindow).where(
            DeliveryWindow.location_id == hub.id).order_by(DeliveryWindow.starts_at))
            if w.starts_at.astimezone(LONDON).date() == today]
        stock = [v for v, on_hand in session.execute(select(StockLevel.variant_id,
                 StockLevel.on_hand).where(StockLevel.location_id == hub.id)) if on_hand > 5]
        hub_point = R.GeoPoint(hub.latitude or 0, hub.longitude or 0)

        def local(pairs: list[tuple[int, Any]], hub_point: R.GeoPoint = hub_point
                  ) -> list[tuple[int, Any]]:
            return [(c, s) for c, s in pairs
                    if c in homes and homes[c].metres_to(hub_point) <= RADIUS_KM * 1000]

        neighbours, local_members = local(customers), local(members)
        if not windows or not stock or not neighbours:
            continue
        for _ in range(ORDERS_PER_HUB):
            window = ctx.rng.choice(windows)
            latest = min(window.cutoff_at, ctx.now) - timedelta(minutes=2)
            placed = latest - timedelta(minutes=ctx.rng.uniform(5, 600))
            # Members are over-represented among window orders: their subsidy rule applies.
            customer_id, shopper = ctx.rng.choice(local_members or neighbours) \
                if ctx.rng.random() < 0.3 else ctx.rng.choice(neighbours)
            point = _near(ctx, homes[customer_id], DOOR_KM)
            variant_id = ctx.rng.choice(stock)
            try:
                decision = fulfilment.decide_fulfilment(
                    session, lines=[fulfilment.LineRequest(variant_id, 1)],
                    destination=fulfilment.Destination(point, label=shopper.postcode),
                    customer_id=customer_id, at=placed, customer=_facts(ctx, customer_id, placed))
            except DomainError:
                continue
            chosen = decision.chosen
            # The order is written where it was decided (central, or this or another hub).
            order = _write_order(ctx, customer_id, shopper, variant_id, placed,
                                 chosen.location_id, point, path=chosen.path)
            fulfilment.record_decision(session, clock=FrozenClock(placed), decision=decision,
                                       order_id=order["id"], customer_id=customer_id)
            decisions += 1
            if chosen.path == "hub-window" and chosen.window_id is not None:
                try:
                    fulfilment.book_window(
                        session, clock=FrozenClock(placed), window_id=chosen.window_id,
                        order_id=order["id"], destination=point,
                        weight_grams=order["weight"], label=order["postcode"])
                    booked += 1
                except DomainError:
                    pass
    planned = _plan(ctx, hubs, today)
    ctx.summary["today's deliveries"] = (f"{booked} stops booked in today's windows, "
                                         f"{planned} windows routed, {decisions} decisions")
    return f"{decisions} fulfilment decisions, {booked} window stops, {planned} route plans"


def _member_ids(ctx: DemoContext) -> list[int]:
    return sorted(set(ctx.session.scalars(select(Membership.customer_id))))


def _facts(ctx: DemoContext, customer_id: int, at: Any) -> fulfilment.CustomerFacts:
    """What checkout tells the rules about the shopper (memberships' perks)."""
    tier = active_tier(ctx.session, customer_id=customer_id, at=at)
    subsidy = delivery_subsidy(ctx.session, customer_id=customer_id, at=at)
    return fulfilment.CustomerFacts(is_member=tier is not None,
                                    member_delivery_subsidy=subsidy.kind.value != "none")


def _near(ctx: DemoContext, centre: R.GeoPoint, radius_km: float) -> R.GeoPoint:
    """A point uniformly within ``radius_km`` of ``centre``."""
    distance = radius_km * math.sqrt(ctx.rng.random())
    bearing = ctx.rng.uniform(0, 2 * math.pi)
    lat = centre.latitude + distance * math.cos(bearing) / 110.574
    lon = centre.longitude + distance * math.sin(bearing) / (
        111.320 * math.cos(math.radians(centre.latitude)))
    return R.GeoPoint(round(lat, 6), round(lon, 6))


def _write_order(ctx: DemoContext, customer_id: int, shopper: Any, variant_id: int,
                 placed: Any, location_id: int, point: R.GeoPoint, *,
                 path: str) -> dict[str, Any]:
    session = ctx.session
    variant, product_name, family = session.execute(
        select(Variant, Product.name, ProductFamily.slug)
        .join(Product, Product.id == Variant.product_id)
        .join(ProductFamily, ProductFamily.id == Product.family_id)
        .where(Variant.id == variant_id)).one()
    totals = order_totals([PricedLine(variant.id, variant.price_amount, 1, variant.currency)],
                          currency=variant.currency,
                          flat_shipping=ctx.settings.shop.flat_shipping_amount,
                          free_shipping_threshold=ctx.settings.shop.free_shipping_threshold)
    paid = placed + timedelta(seconds=20)
    address = {**shopper.address, "latitude": point.latitude, "longitude": point.longitude}
    [order_id] = _insert_returning_ids(ctx, Order, [{
        "customer_id": customer_id, "email": shopper.email, "status": OrderStatus.paid,
        "currency": totals.currency, "subtotal_amount": totals.subtotal_amount,
        "discount_amount": totals.discount_amount, "shipping_amount": totals.shipping_amount,
        "total_amount": totals.total_amount, "refunded_amount": 0, "checkout_reference": None,
        "cart_id": None, "location_id": location_id, "fulfilment_path": path,
        "acquisition_source": shopper.source, "acquisition_campaign": shopper.campaign,
        "shipping_address": address, "created_at": placed, "paid_at": paid}])
    session.add(OrderLine(
        order_id=order_id, variant_id=variant.id, sku=variant.sku, product_name=product_name,
        variant_name=variant.name, product_family=family, condition_grade=variant.condition_grade,
        condition_disclosure=variant.condition_disclosure or "",
        unit_price_amount=variant.price_amount, quantity=1,
        line_total_amount=variant.price_amount))
    session.add(Payment(
        order_id=order_id, provider=PAYMENT_PROVIDER, idempotency_key=f"demo_pay_{order_id}",
        provider_ref=f"demo_ch_{order_id:07d}", status=PaymentStatus.succeeded,
        amount=totals.total_amount, currency=totals.currency, card_last4=shopper.card_last4,
        card_fingerprint=shopper.card_fingerprint, decline_code=None, created_at=placed,
        updated_at=paid))
    payload = order_event_payload(
        order_id=order_id, total_amount=totals.total_amount, currency=totals.currency,
        acquisition_source=shopper.source, acquisition_campaign=shopper.campaign,
        product_families=[family], fulfilment_path=path)
    ctx.record_later(at=placed, type="order.created", subject_type="order", subject_id=order_id,
                     customer_id=customer_id, payload=payload)
    ctx.record_later(at=paid, type="order.paid", subject_type="order", subject_id=order_id,
                     customer_id=customer_id, payload={**payload, "decline_code": None})
    session.flush()
    return {"id": order_id, "variant_id": variant.id, "weight": variant.weight_grams or 300,
            "postcode": shopper.postcode}


def _plan(ctx: DemoContext, hubs: list[Location], today: Any) -> int:
    session = ctx.session
    solver = NearestNeighbourSolver()
    planned = 0
    for hub in hubs:
        with_stops = [w for w in session.scalars(
            select(DeliveryWindow).where(DeliveryWindow.location_id == hub.id)
            .where(DeliveryWindow.id.in_(select(WindowBooking.window_id)))
            .order_by(DeliveryWindow.starts_at))
            if w.starts_at.astimezone(LONDON).date() == today]
        due = [w for w in with_stops if w.cutoff_at <= ctx.now] or with_stops[:1]
        for window in due:
            if session.scalar(select(RoutePlanRow.id).where(RoutePlanRow.window_id == window.id)):
                continue
            plan_window(session, clock=FrozenClock(max(window.cutoff_at, ctx.now)),
                        window_id=window.id, solver=solver, max_seconds=1.0)
            planned += 1
    return planned
