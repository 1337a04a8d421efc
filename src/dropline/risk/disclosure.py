"""The condition disclosure wherever an item is sold: one wording for pages (the Jinja partial
``web/templates/_grade.html``) and for plain-text receipts (``receipt_disclosures``), so a
refurbished or used item is never sold without its grade and description."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from dropline.catalog.models import ConditionGrade
from dropline.catalog.rules import GRADE_LABELS


class GradedItem(Protocol):
    condition_grade: Any  # ConditionGrade or its value
    condition_disclosure: str


def _grade(item: GradedItem) -> ConditionGrade:
    return ConditionGrade(getattr(item.condition_grade, "value", item.condition_grade))


def disclosure_text(item: GradedItem) -> str:
    """``""`` for a new item; else "Condition: Refurbished, grade B. <disclosure>"."""
    grade = _grade(item)
    if grade is ConditionGrade.new:
        return ""
    return f"Condition: {GRADE_LABELS[grade]}. {item.condition_disclosure}".strip()


def receipt_disclosures(lines: Iterable[Any], *, base_url: str = "") -> list[str]:
    """Lines to append to a receipt email: each graded item's name and disclosure, and where
    the grades are explained. Empty when everything sold was new."""
    out = [f"  {line.product_name} ({line.variant_name}): {disclosure_text(line)}"
           for line in lines if disclosure_text(line)]
    if out:
        out = ["", "Condition of graded items:", *out,
               f"What the grades mean: {base_url.rstrip('/')}/returns-policy#grades"]
    return out
