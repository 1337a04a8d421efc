"""Invented shoppers and their order histories: pure functions of a random stream and "now".

Repeat buying follows the BG/NBD story (Fader, Hardie & Lee 2005), which the telemetry module
fits back: while "alive" a shopper buys as a Poisson process with their own rate
lambda ~ Gamma(r, alpha), and after each purchase drops out for good with their own probability
p ~ Beta(a, b). The heterogeneity is what makes most people buy once, some come back and a few
become loyal. Spend varies per shopper through an "appetite" (basket size, bottle size).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dropline.catalog.models import ConditionGrade
from dropline.demo.brand import (
    CAMPAIGN_DISCOUNT_PERCENT,
    CAMPAIGNS,
    CENTRAL,
    CURRENCY,
    DISTRICTS,
    FAMILY_TASTE,
    FIRST_NAMES,
    HISTORY_DAYS,
    LAST_NAMES,
    LOCATIONS,
    POP_UPS,
    PRODUCTS,
    SOURCE_WEIGHTS,
    STREETS,
    DemoProduct,
    DemoVariant,
)
from dropline.orders.rules import PricedLine, Totals, order_totals

# BG/NBD population parameters, time in weeks: a mean rate of one order every ~13 weeks while
# alive and a mean drop-out probability of ~0.3 after each order.
R, ALPHA = 0.75, 10.0
A, B = 0.9, 2.2
MAX_ORDERS_PER_SHOPPER = 24
# Share of sign-ups who ever buy: newsletter sign-ups often only want the discount code.
BUYS_AT_ALL = {"newsletter": 0.6}
BUYS_AT_ALL_DEFAULT = 0.9
HUB_WINDOW_SHARE = 0.6  # of orders from a hub's districts once the hub is open
FULL_REFUND_RATE, PARTIAL_REFUND_RATE = 0.03, 0.06
# Evening-heavy shopping hours (London), weights for 07:00..23:00.
HOUR_WEIGHTS = (1, 2, 3, 3, 3, 4, 4, 3, 3, 3, 4, 5, 6, 8, 9, 8, 5)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters a UK inward code may use


@dataclass(frozen=True)
class Shopper:
    index: int
    email: str
    name: str
    source: str
    campaign: str
    signed_up_at: datetime
    district: str
    city: str
    line1: str
    postcode: str
    appetite: float  # ~1 on average; scales basket and bottle size
    card_last4: str

    @property
    def card_fingerprint(self) -> str:
        return hashlib.sha256(f"demo-card:{self.email}".encode()).hexdigest()[:32]

    @property
    def address(self) -> dict[str, str]:
        return {"name": self.name, "line1": self.line1, "city": self.city,
                "postcode": self.postcode, "country": "GB"}


@dataclass(frozen=True)
class PlannedLine:
    sku: str
    variant_id: int
    product_name: str
    variant_name: str
    family: str
    grade: ConditionGrade
    disclosure: str
    unit_price_amount: int
    quantity: int

    @property
    def line_total_amount(self) -> int:
        return self.unit_price_amount * self.quantity


@dataclass(frozen=True)
class PlannedRefund:
    at: datetime
    amount: int
    reason: str


@dataclass(frozen=True)
class PlannedOrder:
    shopper: Shopper
    created_at: datetime
    paid_at: datetime
    lines: tuple[PlannedLine, ...]
    totals: Totals
    fulfilment_path: str  # "central" | "hub-window" | "pop-up"
    location_code: str  # a brand location code
    shipping_address: dict[str, str]
    refunds: tuple[PlannedRefund, ...]

    @property
    def families(self) -> list[str]:
        return sorted({line.family for line in self.lines})

    @property
    def refunded_amount(self) -> int:
        return sum(refund.amount for refund in self.refunds)


# ------------------------------------------------------------------------------------ shoppers


def _at_shopping_hour(rng: random.Random, day: datetime) -> datetime:
    hour = 7 + rng.choices(range(len(HOUR_WEIGHTS)), HOUR_WEIGHTS)[0]
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60),
                       microsecond=0)


def _sign_up_day(rng: random.Random, now: datetime) -> datetime:
    """More sign-ups lately (the brand grows) and around Christmas gifting."""
    while True:
        days_ago = rng.uniform(1, HISTORY_DAYS)
        day = now - timedelta(days=days_ago)
        weight = 1 + 1.5 * (1 - days_ago / HISTORY_DAYS)
        if (day.month == 11 and day.day >= 15) or (day.month == 12 and day.day <= 20):
            weight *= 1.8
        if rng.random() * 2.5 * 1.8 < weight:
            return day


def _campaign(rng: random.Random, source: str, days_ago: float) -> str:
    active = [c.name for c in CAMPAIGNS
              if c.source == source and c.end_days_ago <= days_ago <= c.start_days_ago]
    if source != "pop-up" and (not active or rng.random() < 0.3):
        return ""  # organic: came from the channel but not through a campaign
    return rng.choice(active) if active else "spitalfields-weekends"


def _previous_weekend(day: datetime) -> datetime:
    """Spitalfields trades at weekends: move a pop-up sign-up back to the Saturday or Sunday."""
    while day.weekday() < 5:
        day -= timedelta(days=1)
    return day


def plan_shoppers(rng: random.Random, *, count: int, now: datetime) -> list[Shopper]:
    sources, source_weights = zip(*SOURCE_WEIGHTS.items(), strict=True)
    districts = [d for d, _, _ in DISTRICTS]
    cities = {d: c for d, c, _ in DISTRICTS}
    district_weights = [w for _, _, w in DISTRICTS]
    shoppers = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        source = rng.choices(sources, source_weights)[0]
        day = _sign_up_day(rng, now)
        if source == "pop-up":
            day = _previous_weekend(day)
        campaign = _campaign(rng, source, (now - day).total_seconds() / 86400)
        signed_up_at = _at_shopping_hour(rng, day)
        if source == "pop-up":  # market hours
            signed_up_at = signed_up_at.replace(hour=rng.randrange(10, 17))
        signed_up_at = min(signed_up_at, now - timedelta(hours=1))
        district = rng.choices(districts, district_weights)[0]
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        # Reserved example domains (RFC 2606): no demo email can ever reach a real inbox.
        domain = EMAIL_DOMAINS[index % len(EMAIL_DOMAINS)]
        letters = rng.choice(POSTCODE_LETTERS) + rng.choice(POSTCODE_LETTERS)
        inward = f"{rng.randrange(1, 10)}{letters}"
        shoppers.append(Shopper(
            index=index, email=f"{local}.{index + 1}@{domain}", name=f"{first} {last}",
            source=source, campaign=campaign, signed_up_at=signed_up_at, district=district,
            city=cities[district], line1=f"{rng.randrange(1, 180)} {rng.choice(STREETS)}",
            postcode=f"{district} {inward}",
            appetite=rng.gammavariate(3.0, 1 / 3.0), card_last4=f"{rng.randrange(10_000):04d}",
        ))
    return shoppers


# -------------------------------------------------------------------------------------- orders


def purchase_times(rng: random.Random, shopper: Shopper, *, now: datetime) -> list[datetime]:
    """The shopper's order times: a first order soon after sign-up (or none), then BG/NBD."""
    if rng.random() > BUYS_AT_ALL.get(shopper.source, BUYS_AT_ALL_DEFAULT):
        return []
    if shopper.source == "pop-up" or rng.random() < 0.65:  # bought in the sign-up session
        first = shopper.signed_up_at + timedelta(minutes=rng.uniform(2, 40))
    else:
        first = shopper.signed_up_at + timedelta(days=rng.expovariate(1 / 12))
    latest = now - timedelta(minutes=10)
    if first >= latest:
        return []
    rate_per_week = rng.gammavariate(R, 1 / ALPHA)
    drop_out = rng.betavariate(A, B)
    times = [first]
    # Weeks are summed as floats and checked against the window before any datetime is built:
    # a rate drawn close to zero gives a wait of millions of years, beyond what datetime holds.
    window_weeks = (latest - first) / timedelta(weeks=1)
    elapsed = 0.0
    while (rate_per_week > 0 and len(times) < MAX_ORDERS_PER_SHOPPER
           and rng.random() >= drop_out):
        elapsed += rng.expovariate(rate_per_week)
        if elapsed >= window_weeks:
            break
        times.append(first + timedelta(weeks=elapsed))
    return [t.replace(microsecond=0) for t in times]


@dataclass(frozen=True)
class _Catalog:
    by_family: dict[str, list[DemoProduct]]
    by_sku: dict[str, tuple[DemoProduct, DemoVariant]]


def _catalog() -> _Catalog:
    by_family: dict[str, list[DemoProduct]] = {}
    by_sku = {}
    for product in PRODUCTS:
        by_family.setdefault(product.family, []).append(product)
        for variant in product.variants:
            by_sku[variant.sku] = (product, variant)
    return _Catalog(by_family, by_sku)


def _pick_variant(rng: random.Random, product: DemoProduct, appetite: float) -> DemoVariant:
    if product.family == "eau-de-parfum":  # 10 ml, 50 ml, 100 ml: bigger appetite, bigger bottle
        weights = [0.45 / appetite, 0.45, 0.12 * appetite]
    elif product.family == "candles":
        weights = [0.8, 0.2 * appetite]
    else:
        weights = [1.0] * len(product.variants)
    return rng.choices(product.variants, weights)[0]


def _basket(rng: random.Random, shopper: Shopper, catalog: _Catalog, *, at: datetime,
            owned: set[str]) -> list[tuple[DemoProduct, DemoVariant, int]]:
    refills = [catalog.by_sku[p.refill_sku] for p in catalog.by_family["eau-de-parfum"]
               if p.slug in owned and p.refill_sku in catalog.by_sku]
    # A returning shopper who owns a refillable bottle often comes back for its refill.
    if refills and rng.random() < 0.45:
        product, variant = rng.choice(refills)
        chosen = [(product, variant, 1)]
    else:
        chosen = []
    taste = dict(FAMILY_TASTE[shopper.source])
    if at.month in (11, 12):  # gifting season
        taste["candles"] *= 1.6
        taste["discovery-sets"] *= 1.8
    n_lines = max(1 - len(chosen), 0) + min(3, _poisson(rng, 0.35 * shopper.appetite))
    families, family_weights = zip(*taste.items(), strict=True)
    for _ in range(n_lines):
        family = rng.choices(families, family_weights)[0]
        products = catalog.by_family[family]
        product = rng.choices(products, [p.popularity for p in products])[0]
        variant = _pick_variant(rng, product, shopper.appetite)
        if any(v.sku == variant.sku for _, v, _ in chosen):
            continue
        quantity = 2 if family in ("candles", "discovery-sets") and rng.random() < 0.15 else 1
        if variant.grade is not ConditionGrade.new:
            quantity = 1  # graded stock is one of a kind
        chosen.append((product, variant, quantity))
    return chosen


def _poisson(rng: random.Random, mean: float) -> int:
    count, t = 0, rng.expovariate(1.0)
    while t < mean:
        count += 1
        t += rng.expovariate(1.0)
    return count


def _fulfilment(rng: random.Random, shopper: Shopper, *, at: datetime, first: bool,
                now: datetime) -> tuple[str, str]:
    """(fulfilment path, location code) for an order placed at ``at``."""
    if first and shopper.source == "pop-up":
        return "pop-up", POP_UPS[1] if shopper.campaign == "peckham-summer" else POP_UPS[0]
    for hub in LOCATIONS:
        hub_open = at >= now - timedelta(days=hub.opened_days_ago)
        if shopper.district in hub.districts and hub_open and rng.random() < HUB_WINDOW_SHARE:
            return "hub-window", hub.code
    return "central", CENTRAL


def _refunds(rng: random.Random, *, paid_at: datetime, now: datetime, total: int,
             lines: Sequence[PlannedLine], final_sale: bool) -> tuple[PlannedRefund, ...]:
    at = paid_at + timedelta(days=rng.uniform(2, 25))
    if at >= now - timedelta(hours=1):
        return ()
    at = at.replace(microsecond=0)
    roll = rng.random()
    if roll < FULL_REFUND_RATE:
        reason = "lost in transit" if final_sale else rng.choice(
            ("returned unopened within 30 days", "lost in transit"))
        return (PlannedRefund(at, total, reason),)
    if roll < FULL_REFUND_RATE + PARTIAL_REFUND_RATE:
        line = rng.choice(lines)
        if line.line_total_amount < total:
            return (PlannedRefund(at, line.line_total_amount,
                                  f"{line.product_name} ({line.variant_name}) arrived damaged"),)
        return (PlannedRefund(at, max(total // 5, 1), "goodwill: delivery arrived late"),)
    return ()


def plan_orders(
    rng: random.Random, shoppers: Sequence[Shopper], *, now: datetime,
    variant_ids: Mapping[str, int], flat_shipping: int, free_shipping_threshold: int,
) -> list[PlannedOrder]:
    """Every shopper's orders, oldest first per shopper. ``variant_ids`` maps SKU to id."""
    catalog = _catalog()
    orders = []
    for shopper in shoppers:
        owned: set[str] = set()
        for number, at in enumerate(purchase_times(rng, shopper, now=now)):
            basket = _basket(rng, shopper, catalog, at=at, owned=owned)
            owned.update(product.slug for product, _, _ in basket)
            lines = tuple(
                PlannedLine(sku=v.sku, variant_id=variant_ids[v.sku], product_name=p.name,
                            variant_name=v.name, family=p.family, grade=v.grade,
                            disclosure=v.disclosure, unit_price_amount=v.price, quantity=q)
                for p, v, q in sorted(basket, key=lambda item: variant_ids[item[1].sku])
            )
            path, location = _fulfilment(rng, shopper, at=at, first=number == 0, now=now)
            subtotal = sum(line.line_total_amount for line in lines)
            percent = CAMPAIGN_DISCOUNT_PERCENT.get(shopper.campaign, 0) if number == 0 else 0
            totals = order_totals(
                [PricedLine(line.variant_id, line.unit_price_amount, line.quantity, CURRENCY)
                 for line in lines],
                currency=CURRENCY,
                # Bought over the counter at a pop-up: nothing to ship.
                flat_shipping=0 if path == "pop-up" else flat_shipping,
                free_shipping_threshold=free_shipping_threshold,
                discount_amount=subtotal * percent // 100,
            )
            paid_at = at + timedelta(seconds=rng.randint(2, 20))
            final_sale = any(catalog.by_sku[line.sku][1].final_sale for line in lines)
            address = ({"collected_at": location} if path == "pop-up" else shopper.address)
            orders.append(PlannedOrder(
                shopper=shopper, created_at=at, paid_at=paid_at, lines=lines, totals=totals,
                fulfilment_path=path, location_code=location, shipping_address=address,
                refunds=_refunds(rng, paid_at=paid_at, now=now, total=totals.total_amount,
                                 lines=lines, final_sale=final_sale),
            ))
    return orders
