"""Demo step: Ember & Fig's three pop-ups and their conversion to membership.

* **Spitalfields Market** (weekends, all year, still trading: open, with its counter) and
  **Peckham Levels** (last summer, closed with a count that was one bottle short, the rest sent
  back to the warehouse): their counter sales are the order history's pop-up orders.
* **Coal Drops Yard** (ten weeks ago, a week, closed): existing customers who came by, with
  their counter sales (their acquisition source stays their own: first touch wins).

Then, as the brand's case study reports, about 18% of each pop-up's buyers join within 30 days
of buying there: those the membership step already made members count, and the rest are signed
up at the counter (a Friends of the Fig membership starting minutes after the sale), written
in bulk through the membership demo's own planner so their renewals look like everyone else's.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from dropline.catalog.models import Product, ProductFamily, Variant
from dropline.clock import FrozenClock
from dropline.customers.models import Customer
from dropline.demo import DemoContext, demo_step
from dropline.fulfilment.service import complete_due_movements
from dropline.locations.models import Location, LocationKind
from dropline.memberships.demo import PlannedMember, _write, plan_member
from dropline.memberships.models import Membership, MembershipTier
from dropline.memberships.rules import LIVE_STATUSES, DunningPolicy
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.orders.rules import order_event_payload
from dropline.payments.models import Payment, PaymentStatus
from dropline.popups import experiments, rules, service
from dropline.popups.models import ExperimentObservation, Popup, PopupSale, PopupStatus

TARGET = 0.18  # the case study's pop-up-to-member conversion
COAL_DROPS = ("popup-coal-drops", "Coal Drops Yard pop-up",
              "Unit 12, Coal Drops Yard, Stable Street, London N1C 4AB", 51.5357, -0.1255)
COAL_DROPS_DAYS_AGO = (72, 66)  # a week of trading before Christmas
COAL_DROPS_SHARE = 0.15  # of the customers signed up by then
TIER = "friends-of-the-fig"
SKUS = ("EF-FIG-10", "EF-FIG-50", "EF-C-FIG-220", "EF-DISC-6")


def _span(ctx: DemoContext, location_id: int) -> tuple[datetime, datetime] | None:
    first, last = ctx.session.execute(select(func.min(Order.created_at),
                                             func.max(Order.created_at))
                                      .where(Order.location_id == location_id,
                                             Order.fulfilment_path == "pop-up")).one()
    return (first, last) if first is not None else None


def _popup(ctx: DemoContext, location: Location, hub_id: int, opens: datetime,
           closes: datetime, status: PopupStatus) -> Popup:
    popup = Popup(location_id=location.id, hub_location_id=hub_id, status=status,
                  opens_at=opens, closes_at=closes, created_at=opens - timedelta(days=14),
                  closed_at=closes if status is PopupStatus.closed else None)
    ctx.session.add(popup)
    ctx.session.flush()
    return popup


def _history_sales(ctx: DemoContext, popup: Popup) -> int:
    rows = ctx.session.execute(
        select(Order.id, Order.customer_id, Order.created_at, Payment.card_last4)
        .join(Payment, Payment.order_id == Order.id)
        .where(Order.location_id == popup.location_id, Order.fulfilment_path == "pop-up",
               Order.paid_at.is_not(None))).all()
    ctx.session.add_all([PopupSale(popup_id=popup.id, order_id=oid, customer_id=cid,
                                   card_last4=last4, sold_at=at) for oid, cid, at, last4 in rows])
    return len(rows)


def _coal_drops_sales(ctx: DemoContext, popup: Popup, rng: random.Random) -> int:
    """Existing customers who came by (about one in seven), one paid counter order each,
    written as the history step writes orders; their acquisition source stays their own
    (first touch wins), so the demo's customer count is the one asked for."""
    session = ctx.session
    variants = {v.sku: (v, p, fam) for v, p, fam in session.execute(
        select(Variant, Product, ProductFamily.slug)
        .join(Product, Product.id == Variant.product_id)
        .join(ProductFamily, ProductFamily.id == Product.family_id)
        .where(Variant.sku.in_(SKUS)))}
    known = sorted(cid for cid, shopper in ctx.ids.customers.items()
                   if shopper.signed_up_at < popup.opens_at)
    if not variants or not known:
        return 0
    visitors = rng.sample(known, min(len(known), max(6, round(COAL_DROPS_SHARE * len(known)))))
    for number, customer_id in enumerate(visitors):
        shopper = ctx.ids.customers[customer_id]
        customer = session.get(Customer, customer_id)
        assert customer is not None
        at = popup.opens_at + timedelta(days=rng.randrange(6), hours=rng.uniform(0, 7))
        variant, product, family = variants[rng.choice(sorted(variants))]
        quantity = 2 if rng.random() < 0.15 else 1
        total = variant.price_amount * quantity
        order = Order(customer_id=customer_id, email=customer.email, status=OrderStatus.paid,
                      currency=variant.currency, subtotal_amount=total, discount_amount=0,
                      shipping_amount=0, total_amount=total, refunded_amount=0,
                      checkout_reference=f"demo-coal-{number}", location_id=popup.location_id,
                      fulfilment_path="pop-up", acquisition_source=customer.acquisition_source,
                      acquisition_campaign=customer.acquisition_campaign,
                      shipping_address={"collected_at": COAL_DROPS[0]}, created_at=at,
                      paid_at=at + timedelta(seconds=rng.randint(5, 40)))  # the tap
        session.add(order)
        session.flush()
        session.add(OrderLine(order_id=order.id, variant_id=variant.id, sku=variant.sku,
                              product_name=product.name, variant_name=variant.name,
                              product_family=family, condition_grade=variant.condition_grade,
                              condition_disclosure="", unit_price_amount=variant.price_amount,
                              quantity=quantity, line_total_amount=total))
        session.add(Payment(order_id=order.id, provider="demo",
                            idempotency_key=f"demo_coal_{number}",
                            provider_ref=f"demo_ch_coal_{number}",
                            status=PaymentStatus.succeeded, amount=total,
                            currency=variant.currency, card_last4=shopper.card_last4,
                            card_fingerprint=shopper.card_fingerprint, created_at=at,
                            updated_at=order.paid_at))
        session.add(PopupSale(popup_id=popup.id, order_id=order.id, customer_id=customer_id,
                              card_last4=shopper.card_last4, sold_at=at))
        payload = order_event_payload(
            order_id=order.id, total_amount=total, currency=variant.currency,
            acquisition_source=customer.acquisition_source,
            acquisition_campaign=customer.acquisition_campaign,
            product_families=[family], fulfilment_path="pop-up")
        # What the checkout flow writes (the history step's orders carry the same).
        for kind, when, extra in (("order.created", at, {}),
                                  ("order.paid", order.paid_at, {"decline_code": None})):
            ctx.record_later(at=when, type=kind, subject_type="order", subject_id=order.id,
                             customer_id=customer_id, payload={**payload, **extra})
    return len(visitors)


def _sign_up_to_target(ctx: DemoContext, popups: list[Popup], rng: random.Random) -> int:
    """Signs up buyers who are not members, minutes after their first purchase at the
    pop-up, until each pop-up converts about TARGET of its buyers within 30 days."""
    session = ctx.session
    tier = session.scalar(select(MembershipTier).where(MembershipTier.slug == TIER))
    if tier is None:
        return 0
    plans: list[PlannedMember] = []
    planned: set[int] = set()
    for popup in popups:
        first: dict[int, datetime] = {}
        for customer_id, at in session.execute(select(PopupSale.customer_id, PopupSale.sold_at)
                                               .where(PopupSale.popup_id == popup.id)):
            first[customer_id] = min(at, first.get(customer_id, at))
        starts: dict[int, list[datetime]] = {}
        for customer_id, started in session.execute(
                select(Membership.customer_id, Membership.started_at)
                .where(Membership.customer_id.in_(first))):
            starts.setdefault(customer_id, []).append(started)
        converted = rules.conversion_by_popup(
            [rules.PopupPurchase("p", c, at) for c, at in first.items()], starts,
            within_days=service.CONVERSION_DAYS)["p"].members if first else 0
        wanted = round(TARGET * len(first)) - converted
        free = sorted(c for c in first if c not in starts and c not in planned
                      and c in ctx.ids.customers)
        for customer_id in rng.sample(free, max(0, min(wanted, len(free)))):
            start = first[customer_id] + timedelta(minutes=rng.randint(3, 20))
            if start >= ctx.now:
                continue
            planned.add(customer_id)
            plans.append(plan_member(rng, PlannedMember(customer_id, "friends", start), tier,
                                     now=ctx.now, dunning=DunningPolicy()))
    _write(ctx, plans, {"friends": tier}, DunningPolicy())
    live = sum(1 for p in plans if p.status in LIVE_STATUSES)
    session.execute(update(MembershipTier).where(MembershipTier.id == tier.id)
                    .values(live_count=MembershipTier.live_count + live))
    return len(plans)


HERO_SLUG = "fig-eau-de-parfum"  # the demo brand's hero scent (demo.brand)


def _experiment(ctx: DemoContext, rng: random.Random) -> str:
    """A finished headline test on the hero scent's page: about 1,200 visitors, control 6%
    and the variant 8.5% adding to cart (written in bulk, as observations)."""
    from sqlalchemy import insert


    slug = "fig-headline"
    experiment = experiments.create_experiment(
        ctx.session, clock=FrozenClock(ctx.now - timedelta(days=21)), slug=slug,
        # Scoped to the hero scent's page: an empty target would retitle every product page.
        name="Hero scent headline", page_kind="product", target=HERO_SLUG,
        variants=[{"key": "a", "label": "control", "headline": "Fig Leaf & Smoke"},
                  {"key": "b", "label": "notes first",
                   "headline": "Green fig, cedar smoke, a London night"}])
    rows = []
    for number in range(1200):
        visitor = f"demo-visitor-{number}"
        variant = rules.assign_variant(slug, visitor, ["a", "b"])
        at = ctx.now - timedelta(days=21) + timedelta(minutes=number * 20)
        base = {"experiment_id": experiment.id, "variant": variant,
                "visitor": rules.visitor_hash(visitor)}
        rows.append({**base, "kind": "exposure", "occurred_at": at})
        if rng.random() < (0.06 if variant == "a" else 0.085):
            rows.append({**base, "kind": "conversion", "occurred_at": at + timedelta(minutes=3)})
    ctx.session.execute(insert(ExperimentObservation), rows)
    return slug


@demo_step("popups", order=800, label="Pop-ups and counter sign-ups")
def seed_popups(ctx: DemoContext) -> str:
    session, rng, now = ctx.session, ctx.rng, ctx.now
    by_code = {loc.code: loc for loc in session.scalars(select(Location))}
    hub = session.scalar(select(Location).where(
        Location.kind == LocationKind.central_warehouse).order_by(Location.id))
    if hub is None:
        return "no warehouse: skipped"
    made: list[Popup] = []
    for code in ("popup-spitalfields", "popup-peckham"):
        location = by_code.get(code)
        span = _span(ctx, location.id) if location else None
        if location is None or span is None:
            continue
        trading = code == "popup-spitalfields"  # the weekend residency still trades
        opens = span[0].replace(hour=10, minute=0, second=0, microsecond=0)
        closes = (now + timedelta(days=30)) if trading else span[1] + timedelta(hours=8)
        popup = _popup(ctx, location, hub.id, opens, closes,
                       PopupStatus.open if trading else PopupStatus.closed)
        _history_sales(ctx, popup)
        made.append(popup)
        if not trading:
            # Closed with a count one bottle short; the rest went back to the warehouse.
            expected = service.stock_at(session, location.id)
            counted = dict(expected)
            if counted:
                short = min(counted, key=lambda vid: (-counted[vid], vid))
                counted[short] = max(0, counted[short] - 1)
            popup.status = PopupStatus.open  # close_popup closes an open pop-up
            service.close_popup(session, clock=FrozenClock(closes), code=code,
                                counted=counted, lead_hours=4)
    code, name, address, lat, lon = COAL_DROPS
    location = Location(code=code, name=name, kind=LocationKind.pop_up, address=address,
                        latitude=lat, longitude=lon, active=True)
    session.add(location)
    session.flush()
    ctx.ids.locations[code] = location.id
    opens = (now - timedelta(days=COAL_DROPS_DAYS_AGO[0])).replace(hour=10, minute=0, second=0,
                                                                   microsecond=0)
    closes = (now - timedelta(days=COAL_DROPS_DAYS_AGO[1])).replace(hour=18, minute=0,
                                                                    second=0, microsecond=0)
    coal = _popup(ctx, location, hub.id, opens, closes, PopupStatus.closed)
    _coal_drops_sales(ctx, coal, rng)
    made.append(coal)
    complete_due_movements(session, clock=FrozenClock(now))
    signed = _sign_up_to_target(ctx, made, rng)
    _experiment(ctx, rng)
    figures = service.conversion_report(session)
    ctx.summary["pop-ups"] = ", ".join(f"{r.code.removeprefix('popup-')} {r.rate:.0%} of "
                                       f"{r.buyers}" for r in figures)
    return f"{len(made)} pop-ups, {signed} counter sign-ups; console at /admin/popups"
