"""The storefront's Jinja2 environment, shared by every storefront page module (and by other
domains that render into the shop layout). Kept apart from ``web.pages`` so page modules can
import it without importing each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from dropline.catalog.models import ConditionGrade
from dropline.catalog.rules import GRADE_LABELS

TEMPLATE_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATE_DIR)


def money(amount: int, currency: str = "GBP") -> str:
    """Minor units to a display string: -150 GBP -> "-£1.50" (two-decimal currencies)."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    symbol = {"GBP": "£", "EUR": "€", "USD": "$"}.get(currency)
    major = f"{units:,}.{cents:02d}"
    return f"{sign}{symbol}{major}" if symbol else f"{sign}{major} {currency}"


templates.env.filters["money"] = money
templates.env.globals["grade_label"] = lambda g: GRADE_LABELS[ConditionGrade(g)]


def render_html(name: str, **context: Any) -> str:
    """A page as a string, with no request: what public (cacheable) pages use, so nothing
    about the visitor can reach the bytes."""
    return templates.get_template(name).render(**context)
