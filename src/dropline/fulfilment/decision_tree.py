"""The one-page fulfilment decision tree, generated from the configured rules (pure).

The tree mirrors ``rules.decide`` step by step, so the page the ops lead prints is the logic
the checkout runs: filter the options, try each enabled rule in order, fall back to the
cheapest. Rendered as Markdown, as SVG (no scripts, no external assets) and as an HTML page
embedding the SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from dropline.fulfilment.rules import ACTIONS, Rule, describe_condition
from dropline.money import format_money

__all__ = ["tree_html", "tree_markdown", "tree_steps", "tree_svg"]

FILTER_TEXT = ("List the options: central shipping, and each hub window that could take the "
               "order. Drop any without the stock, beyond the hub's radius, full or past "
               "cutoff, or that misses the order's promise.")
FALLBACK_TEXT = "Choose the cheapest remaining option (a tie goes to the hub window)."
NOTHING_TEXT = ("If no option meets the promise: the cheapest option with stock, saying the "
                "promise is missed. If none has stock: out of stock.")


@dataclass(frozen=True)
class Step:
    question: str
    outcome: str
    fallthrough: str  # when the rule matches but its action finds nothing


def tree_steps(rules: Sequence[Rule], currency: str = "GBP") -> list[Step]:
    steps = []
    for rule in rules:
        if not rule.enabled:
            continue
        when = " and ".join(describe_condition(c) for c in rule.conditions) or "any order"
        outcome = ACTIONS[rule.action]
        if rule.action == "prefer-hub":
            fallthrough = "no hub window can take it"
            if rule.max_premium_amount is not None:
                limit = format_money(rule.max_premium_amount, currency)
                outcome += f" (at most {limit} dearer than central)"
                fallthrough += f", or it is more than {limit} dearer"
        else:
            fallthrough = "central shipping cannot take it"
        steps.append(Step(f"{rule.name}: {when}?", outcome, fallthrough))
    return steps


def tree_markdown(rules: Sequence[Rule], *, title: str = "Fulfilment decision tree",
                  currency: str = "GBP") -> str:
    lines = [f"# {title}", "", f"1. {FILTER_TEXT}"]
    number = 2
    for step in tree_steps(rules, currency):
        lines.append(f"{number}. **{step.question}**")
        lines.append(f"   - yes → {step.outcome}; if {step.fallthrough}, go on to the next step")
        lines.append("   - no → next step")
        number += 1
    lines.append(f"{number}. {FALLBACK_TEXT}")
    lines += ["", f"_{NOTHING_TEXT}_", "",
              "Generated from the configured rules; disabled rules are left out.", ""]
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines or [""]


def _box(x: float, y: float, w: float, text: str, *, fill: str, chars: int,
         rounded: bool = True) -> tuple[str, float]:
    lines = _wrap(text, chars)
    h = 16 * len(lines) + 16
    rx = 10 if rounded else 2
    parts = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" fill="{fill}" '
             f'stroke="#33415c" stroke-width="1.2"/>']
    for i, line in enumerate(lines):
        parts.append(f'<text x="{x + 10}" y="{y + 22 + 16 * i}">{escape(line)}</text>')
    return "\n".join(parts), h


def tree_svg(rules: Sequence[Rule], *, title: str = "Fulfilment decision tree",
             currency: str = "GBP") -> str:
    """A vertical chain: each rule's question on the left, its "yes" outcome on the right."""
    left_x, left_w, right_x, right_w, gap = 20, 400, 480, 340, 28
    body: list[str] = []
    y = 50.0

    def arrow(x1: float, y1: float, x2: float, y2: float, label: str = "") -> None:
        body.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#33415c" '
                    'stroke-width="1.4" marker-end="url(#arrow)"/>')
        if label:
            body.append(f'<text x="{(x1 + x2) / 2 + 4}" y="{(y1 + y2) / 2 - 4}" '
                        f'class="label">{escape(label)}</text>')

    box, h = _box(left_x, y, left_w, "1. " + FILTER_TEXT, fill="#eef2f7", chars=58)
    body.append(box)
    y += h
    number = 2
    for step in tree_steps(rules, currency):
        arrow(left_x + left_w / 2, y, left_x + left_w / 2, y + gap, "no" if number > 2 else "")
        y += gap
        box, h = _box(left_x, y, left_w, f"{number}. {step.question}", fill="#fff6d6",
                      chars=58, rounded=False)
        body.append(box)
        outcome, oh = _box(right_x, y, right_w,
                           f"yes → {step.outcome}. If {step.fallthrough}: next step.",
                           fill="#dff3e4", chars=46)
        body.append(outcome)
        arrow(left_x + left_w, y + h / 2, right_x, y + h / 2, "yes")
        y += max(h, oh)
        number += 1
    arrow(left_x + left_w / 2, y, left_x + left_w / 2, y + gap, "no" if number > 2 else "")
    y += gap
    box, h = _box(left_x, y, left_w, f"{number}. {FALLBACK_TEXT}", fill="#dff3e4", chars=58)
    body.append(box)
    y += h + 18
    for i, line in enumerate(_wrap(NOTHING_TEXT, 110)):
        body.append(f'<text x="{left_x}" y="{y + 16 * i}" class="note">{escape(line)}</text>')
    height = y + 40
    width = right_x + right_w + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="{escape(title)}" '
        'font-family="system-ui, sans-serif" font-size="13">\n'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#33415c"/></marker>'
        '<style>.label{font-size:11px;fill:#33415c}.note{font-size:12px;fill:#555}</style>'
        '</defs>\n'
        f'<text x="{left_x}" y="28" font-size="18" font-weight="bold">{escape(title)}</text>\n'
        + "\n".join(body) + "\n</svg>\n"
    )


def tree_html(rules: Sequence[Rule], *, title: str = "Fulfilment decision tree",
              currency: str = "GBP") -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}"
        "@media print{body{margin:0}}</style></head><body>\n"
        + tree_svg(rules, title=title, currency=currency)
        + "</body></html>\n"
    )
