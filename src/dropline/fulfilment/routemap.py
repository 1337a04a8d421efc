"""A route map picture as server-side SVG (pure): the hub, each route's stops in order, and
a scale bar. No tiles, no scripts, no CDN: coordinates are projected equirectangularly around
the hub (plenty accurate across a city), so the picture is the same offline and in print."""

from __future__ import annotations

import math
from html import escape
from zoneinfo import ZoneInfo

from dropline.fulfilment.planning import RouteSheet

__all__ = ["route_map_svg"]

COLOURS = ("#d1495b", "#00798c", "#edae49", "#30638e", "#66a182", "#8d5a97", "#e07a5f",
           "#3d405b")
LONDON = ZoneInfo("Europe/London")


def route_map_svg(sheet: RouteSheet, *, width: int = 720, height: int = 560) -> str:
    margin = 40
    lat0, lon0 = sheet.hub_latitude, sheet.hub_longitude
    kx = 111_320 * math.cos(math.radians(lat0))  # metres per degree of longitude here
    ky = 110_574  # metres per degree of latitude

    def metres(lat: float, lon: float) -> tuple[float, float]:
        return (lon - lon0) * kx, (lat - lat0) * ky

    points = [(0.0, 0.0)] + [metres(s.latitude, s.longitude)
                             for route in sheet.routes for s in route.stops] \
        + [metres(s.latitude, s.longitude) for s in sheet.unassigned]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 500.0)
    scale = min(width - 2 * margin, height - 2 * margin - 40) / span  # px per metre
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2

    def px(lat: float, lon: float) -> tuple[float, float]:
        x, y = metres(lat, lon)
        return (round(width / 2 + (x - cx) * scale, 1),
                round((height - 40) / 2 + 20 - (y - cy) * scale, 1))

    hx, hy = px(lat0, lon0)
    parts: list[str] = []
    legend: list[str] = []
    for index, route in enumerate(sheet.routes):
        colour = COLOURS[index % len(COLOURS)]
        path = [(hx, hy)] + [px(s.latitude, s.longitude) for s in route.stops] + [(hx, hy)]
        d = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(path))
        parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2" '
                     'stroke-linejoin="round" opacity="0.85"/>')
        for stop in route.stops:
            x, y = px(stop.latitude, stop.longitude)
            eta = stop.eta.astimezone(LONDON).strftime("%H:%M")
            tip = escape(f"route {route.number}, stop {stop.position}: order {stop.order_id} "
                         f"{stop.label} at {eta}")
            parts.append(
                f'<g><title>{tip}</title>'
                f'<circle cx="{x}" cy="{y}" r="8" fill="#fff" stroke="{colour}" '
                f'stroke-width="2"/><text x="{x}" y="{y + 3.5}" text-anchor="middle" '
                f'font-size="9">{stop.position}</text></g>')
        legend.append(f"route {route.number} ({escape(route.vehicle)}): {len(route.stops)} "
                      f"stops, {route.distance_m / 1000:.1f} km")
    for stop in sheet.unassigned:
        x, y = px(stop.latitude, stop.longitude)
        tip = escape(f"unassigned: order {stop.order_id}")
        parts.append(f'<g><title>{tip}</title>'
                     f'<path d="M{x - 6},{y - 6} L{x + 6},{y + 6} M{x - 6},{y + 6} '
                     f'L{x + 6},{y - 6}" stroke="#555" stroke-width="2"/></g>')
    parts.append(f'<rect x="{hx - 9}" y="{hy - 9}" width="18" height="18" fill="#1d1d1d"/>'
                 f'<text x="{hx + 13}" y="{hy + 4}" font-weight="bold">'
                 f'{escape(sheet.hub_code)}</text>')

    # A scale bar of a round length, about a fifth of the picture wide.
    target = (width - 2 * margin) / 5 / scale
    bar = next((m for m in (100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
                if m >= target), 100_000)
    bar_px = bar * scale
    sy = height - 22
    parts.append(f'<path d="M{margin},{sy} h{bar_px:.1f}" stroke="#1d1d1d" stroke-width="3"/>'
                 f'<text x="{margin}" y="{sy - 6}">'
                 f'{bar / 1000:g} km</text>')
    when = sheet.starts_at.astimezone(LONDON)
    title = (f"{sheet.hub_name}: window {when:%a %d %b %H:%M}–"
             f"{sheet.ends_at.astimezone(LONDON):%H:%M}")
    legend_svg = "".join(
        f'<text x="{width - margin}" y="{40 + 15 * i}" text-anchor="end" '
        f'fill="{COLOURS[i % len(COLOURS)]}">{line}</text>' for i, line in enumerate(legend))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="system-ui, sans-serif" font-size="12">'
        f'<rect width="{width}" height="{height}" fill="#f7f7f2"/>'
        f'<text x="{margin}" y="24" font-size="15" font-weight="bold">{escape(title)}</text>'
        + legend_svg + "".join(parts) + "</svg>\n"
    )
