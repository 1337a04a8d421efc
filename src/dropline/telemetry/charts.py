"""Small server-side SVG charts: a heatmap, line charts and horizontal bars. Strings in,
an ``<svg>`` string out; no JavaScript, no CDN, every label escaped. Each chart carries a
``<title>`` and an ``aria-label`` so it reads without sight too.

A value of ``None`` means "not observed yet": a heatmap cell is hatched, a line stops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

Format = Callable[[float], str]
# Colour-blind-safe categorical palette (Okabe & Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
FONT = 'font-family="system-ui, sans-serif"'
HATCH = ('<defs><pattern id="unobserved" width="6" height="6" patternUnits="userSpaceOnUse" '
         'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4f1ec"/>'
         '<line x1="0" y1="0" x2="0" y2="6" stroke="#d6cfc4" stroke-width="2"/></pattern></defs>')


def _number(value: float) -> str:
    return f"{value:,.0f}"


def _open(width: float, height: float, title: str) -> list[str]:
    t = escape(title)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="100%" role="img" aria-label="{t}" {FONT} font-size="12">',
            f"<title>{t}</title>"]


def _shade(share: float) -> str:
    """Light sand to deep teal as share goes 0 -> 1 (sequential, readable when printed)."""
    low, high = (247, 243, 236), (0, 94, 99)
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(low, high))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap_svg(rows: Sequence[str], columns: Sequence[str],
                values: Sequence[Sequence[float | None]], *, title: str,
                fmt: Format = _number, row_notes: Sequence[str] | None = None) -> str:
    """Rows x columns of shaded cells with their value written in; None is hatched."""
    cell_w, cell_h, left, top = 62, 24, 96, 40
    width = left + cell_w * len(columns) + 12
    height = top + cell_h * len(rows) + 34
    seen = [v for row in values for v in row if v is not None]
    lo, hi = (min(seen), max(seen)) if seen else (0.0, 1.0)
    span = (hi - lo) or 1.0
    out = _open(width, height, title) + [HATCH]
    out.append(f'<text x="{left}" y="16" font-weight="600">{escape(title)}</text>')
    for j, col in enumerate(columns):
        out.append(f'<text x="{left + cell_w * j + cell_w / 2}" y="{top - 6}" '
                   f'text-anchor="middle" fill="#555">{escape(col)}</text>')
    for i, row in enumerate(rows):
        y = top + cell_h * i
        note = f" ({escape(row_notes[i])})" if row_notes and row_notes[i] else ""
        out.append(f'<text x="{left - 8}" y="{y + cell_h / 2 + 4}" text-anchor="end">'
                   f'{escape(row)}<title>{escape(row)}{note}</title></text>')
        for j, value in enumerate(values[i]):
            x = left + cell_w * j
            if value is None:
                out.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                           f'fill="url(#unobserved)"><title>{escape(row)}, '
                           f'{escape(columns[j])}: not observed yet</title></rect>')
                continue
            share = (value - lo) / span
            ink = "#fff" if share > 0.55 else "#222"
            out.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                       f'fill="{_shade(share)}"><title>{escape(row)}, {escape(columns[j])}: '
                       f'{escape(fmt(value))}</title></rect>')
            out.append(f'<text x="{x + cell_w / 2 - 1}" y="{y + cell_h / 2 + 3}" '
                       f'text-anchor="middle" fill="{ink}" font-size="11">'
                       f'{escape(fmt(value))}</text>')
    legend_y = top + cell_h * len(rows) + 18
    out.append(f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" '
               'fill="url(#unobserved)"/>')
    out.append(f'<text x="{left + 18}" y="{legend_y}" fill="#555">not yet observed for every '
               f'customer of the cohort; darker = higher ({escape(fmt(lo))} to '
               f'{escape(fmt(hi))})</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]  # one per x; None breaks the line


def _ticks(top: float, count: int = 4) -> list[float]:
    if top <= 0:
        return [0.0]
    raw = top / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * k for k in range(count + 2) if step * k <= top * 1.0001 + step]


def line_chart_svg(xs: Sequence[float], series: Sequence[Series], *, title: str, x_label: str,
                   y_label: str, fmt: Format = _number, x_fmt: Format = _number) -> str:
    """Lines sharing one x axis, with a legend; y starts at zero."""
    width, height, left, right, top, bottom = 640, 300, 64, 150, 34, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    seen = [v for s in series for v in s.values if v is not None]
    y_ticks = _ticks(max(seen) if seen else 1.0)
    y_top = max(y_ticks[-1], 1e-9)
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x_span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return left + (x - x_lo) / x_span * plot_w

    def py(y: float) -> float:
        return top + plot_h - y / y_top * plot_h

    out = _open(width, height, title)
    out.append(f'<text x="{left}" y="18" font-weight="600">{escape(title)}</text>')
    for tick in y_ticks:
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(tick):.1f}" '
                   f'y2="{py(tick):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end" '
                   f'fill="#555">{escape(fmt(tick))}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                   f'fill="#555">{escape(x_fmt(x))}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" '
               f'fill="#555">{escape(x_label)}</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" fill="#555" '
               f'transform="rotate(-90 14 {top + plot_h / 2})">{escape(y_label)}</text>')
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for x, y in zip(xs, s.values):
            if y is None:
                runs.append([])
            else:
                runs[-1].append((px(x), py(y)))
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
                out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                           'stroke-width="2"/>')
            for a, b in run:
                out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}"/>')
        ly = top + 14 * k + 4
        out.append(f'<rect x="{left + plot_w + 12}" y="{ly}" width="10" height="10" '
                   f'fill="{colour}"/><text x="{left + plot_w + 27}" y="{ly + 9}">'
                   f'{escape(s.label[:22])}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart_svg(items: Sequence[tuple[str, float | None]], *, title: str,
                  fmt: Format = _number) -> str:
    """Horizontal bars, one per label, longest = largest; None is drawn as a note."""
    bar_h, left, width = 22, 150, 560
    height = 30 + bar_h * len(items) + 10
    top_value = max((v for _, v in items if v is not None), default=0) or 1.0
    out = _open(width, height, title)
    out.append(f'<text x="0" y="16" font-weight="600">{escape(title)}</text>')
    span = width - left - 90
    for i, (label, value) in enumerate(items):
        y = 28 + bar_h * i
        out.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">'
                   f'{escape(label[:24])}</text>')
        if value is None:
            out.append(f'<text x="{left}" y="{y + 14}" fill="#777">not enough history</text>')
            continue
        w = max(value, 0) / top_value * span
        out.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" '
                   f'fill="{PALETTE[0]}"><title>{escape(label)}: {escape(fmt(value))}'
                   '</title></rect>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}">{escape(fmt(value))}</text>')
    out.append("</svg>")
    return "".join(out)
