"""Pure catalog rules: condition grades and the disclosure every graded item must carry."""

from __future__ import annotations

from dropline.catalog.models import ConditionGrade

GRADE_LABELS: dict[ConditionGrade, str] = {
    ConditionGrade.new: "New",
    ConditionGrade.refurbished_a: "Refurbished, grade A",
    ConditionGrade.refurbished_b: "Refurbished, grade B",
    ConditionGrade.refurbished_c: "Refurbished, grade C",
    ConditionGrade.used: "Used",
}

DEFAULT_DISCLOSURES: dict[ConditionGrade, str] = {
    ConditionGrade.new: "",
    ConditionGrade.refurbished_a: "Restored to full function; no visible wear.",
    ConditionGrade.refurbished_b: "Restored to full function; light signs of use.",
    ConditionGrade.refurbished_c: "Restored to full function; visible wear described below.",
    ConditionGrade.used: "Pre-owned and sold as seen; wear described below.",
}

MIN_DISCLOSURE_CHARS = 10


def disclosure_problem(grade: ConditionGrade, disclosure: str) -> str | None:
    """None when the pair is acceptable, else the reason it is not."""
    if grade is ConditionGrade.new:
        return None
    if len(disclosure.strip()) < MIN_DISCLOSURE_CHARS:
        return (
            f"a {GRADE_LABELS[grade].lower()} item needs a condition disclosure of at least "
            f"{MIN_DISCLOSURE_CHARS} characters describing its actual state"
        )
    return None
