"""Server-side pictures for the console's drops and fulfilment pages.

* ``network_map_svg``: every site (warehouse, hubs with their service radius, factory,
  pop-ups) and today's stops, plotted by latitude and longitude (equirectangular around the
  network's centre: accurate enough across a city; no tiles, no scripts).
* ``sell_through_svg``: units sold over time against the cap, through telemetry's line chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.console.figures import PAID, DropRow, Stop
from dropline.drops.models import DropHold
from dropline.fulfilment.models import FulfilmentSite
from dropline.locations.models import Location
from dropline.orders.models import Order
from dropline.telemetry.charts import PALETTE, Series, line_chart_svg

HUB_COLOURS = ("#0072B2", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")  # not the kinds' colours
KIND_STYLE = {  # kind -> (shape, colour)
    "central-warehouse": ("square", "#000000"), "micro-hub": ("circle", PALETTE[0]),
    "micro-factory": ("diamond", PALETTE[3]), "pop-up": ("triangle", PALETTE[2]),
}


def network_map_svg(session: Session, stops: Sequence[Stop], *, width: int = 720,
                    height: int = 480) -> str:
    sites = [(loc, session.get(FulfilmentSite, loc.id)) for loc in session.scalars(
        select(Location).where(Location.active, Location.latitude.is_not(None))
        .order_by(Location.code))]
    if not sites:
        return ""
    lats = [loc.latitude for loc, _ in sites] + [s.latitude for s in stops]
    lons = [loc.longitude for loc, _ in sites] + [s.longitude for s in stops]
    lat0 = (max(lats) + min(lats)) / 2  # type: ignore[operator]
    kx, ky = 111_320 * math.cos(math.radians(lat0)), 110_574

    def metres(lat: float, lon: float) -> tuple[float, float]:
        return lon * kx, lat * ky

    xs, ys = zip(*(metres(a, b) for a, b in zip(lats, lons)), strict=True)  # type: ignore[arg-type]
    margin, legend = 30, 150
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1000.0)
    scale = min(width - legend - 2 * margin, height - 2 * margin) / span
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2

    def px(lat: float, lon: float) -> tuple[float, float]:
        x, y = metres(lat, lon)
        return (round(margin + (width - legend - 2 * margin) / 2 + (x - cx) * scale, 1),
                round(height / 2 - (y - cy) * scale, 1))

    hub_colour = {}
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="Fulfilment network and today\'s stops" '
           f'font-family="system-ui, sans-serif" font-size="11">'
           f"<title>Fulfilment network and today's stops</title>"
           f'<rect width="{width}" height="{height}" fill="#f7f5f0"/>')]
    hubs = [loc for loc, _ in sites if loc.kind.value == "micro-hub"]
    for i, hub in enumerate(hubs):
        hub_colour[hub.code] = HUB_COLOURS[i % len(HUB_COLOURS)]
    for loc, site in sites:
        if loc.kind.value == "micro-hub" and site is not None and site.service_radius_m:
            x, y = px(loc.latitude, loc.longitude)  # type: ignore[arg-type]
            out.append(f'<circle cx="{x}" cy="{y}" r="{site.service_radius_m * scale:.1f}" '
                       f'fill="{hub_colour[loc.code]}" fill-opacity="0.07" '
                       f'stroke="{hub_colour[loc.code]}" stroke-dasharray="4 3"/>')
    for stop in stops:
        x, y = px(stop.latitude, stop.longitude)
        colour = hub_colour.get(stop.hub_code, "#777")
        out.append(f'<circle cx="{x}" cy="{y}" r="3.5" fill="{colour}">'
                   f"<title>{escape(stop.label or 'stop')} ({escape(stop.hub_code)})</title>"
                   "</circle>")
    for loc, _ in sites:
        x, y = px(loc.latitude, loc.longitude)  # type: ignore[arg-type]
        shape, colour = KIND_STYLE.get(loc.kind.value, ("circle", "#444"))
        colour = hub_colour.get(loc.code, colour)
        out.append(_marker(shape, x, y, colour, f"{loc.name} ({loc.kind.value})"))
        out.append(f'<text x="{x + 9}" y="{y + 4}" font-weight="600">{escape(loc.name)}</text>')
    lx = width - legend + 10
    for i, (kind, (shape, colour)) in enumerate(KIND_STYLE.items()):
        out.append(_marker(shape, lx + 6, 24 + 20 * i, colour, kind))
        out.append(f'<text x="{lx + 18}" y="{28 + 20 * i}">{escape(kind)}</text>')
    out.append(f'<circle cx="{lx + 6}" cy="{24 + 20 * len(KIND_STYLE)}" r="3.5" fill="#777"/>'
               f'<text x="{lx + 18}" y="{28 + 20 * len(KIND_STYLE)}">stop today '
               f"({len(stops)})</text>")
    bar = next((m for m in (500, 1000, 2000, 5000, 10_000) if m * scale >= 60), 20_000)
    out.append(f'<path d="M{margin},{height - 16} h{bar * scale:.1f}" stroke="#222" '
               f'stroke-width="3"/><text x="{margin}" y="{height - 22}">{bar / 1000:g} km</text>')
    out.append("</svg>")
    return "".join(out)


def _marker(shape: str, x: float, y: float, colour: str, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>"
    if shape == "square":
        return f'<rect x="{x - 6}" y="{y - 6}" width="12" height="12" fill="{colour}">{title}</rect>'
    if shape == "diamond":
        return (f'<path d="M{x},{y - 7} L{x + 7},{y} L{x},{y + 7} L{x - 7},{y} z" '
                f'fill="{colour}">{title}</path>')
    if shape == "triangle":
        return (f'<path d="M{x},{y - 7} L{x + 7},{y + 6} L{x - 7},{y + 6} z" '
                f'fill="{colour}">{title}</path>')
    return (f'<circle cx="{x}" cy="{y}" r="6" fill="{colour}" stroke="#fff" '
            f'stroke-width="1.5">{title}</circle>')


def sales_times(session: Session, drop_id: int) -> list[tuple[datetime, int]]:
    return [(at, qty) for at, qty in session.execute(
        select(Order.paid_at, DropHold.quantity).join(DropHold, DropHold.order_id == Order.id)
        .where(DropHold.drop_id == drop_id, Order.status.in_(PAID), Order.paid_at.is_not(None))
        .order_by(Order.paid_at))]


def sell_through_svg(row: DropRow, sales: Sequence[tuple[datetime, int]], *,
                     opened_at: datetime, until: datetime, points: int = 12) -> str:
    """Cumulative units sold against the cap, on hours (or days) since the doors opened."""
    span_h = max((until - opened_at).total_seconds() / 3600, 1.0)
    in_days = span_h > 72
    unit = 24.0 if in_days else 1.0
    xs = [span_h / unit * k / points for k in range(points + 1)]
    sold = []
    for x in xs:
        limit = x * unit * 3600
        sold.append(float(sum(q for at, q in sales
                              if (at - opened_at).total_seconds() <= limit)))
    return line_chart_svg(
        xs, [Series("units sold", sold), Series(f"cap ({row.cap})", [float(row.cap)] * len(xs))],
        title=f"{row.name}: units sold since the doors opened",
        x_label="days since opening" if in_days else "hours since opening",
        y_label="units", x_fmt=lambda v: f"{v:.0f}" if v >= 10 or v == 0 else f"{v:.1f}")
