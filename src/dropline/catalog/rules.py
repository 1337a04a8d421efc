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

# Why a person changed stock by hand (the console's and the ledger's reasons).
STOCK_REASONS: dict[str, str] = {
    "received": "Goods received",
    "count": "Stock take correction",
    "damaged": "Damaged or lost",
    "found": "Found",
    "returned": "Returned to stock",
    "transfer": "Moved by hand",
}


def stock_change_problem(*, delta: int, on_hand: int, reason: str) -> tuple[str, str] | None:
    """None when a hand adjustment may be made, else (field, reason it may not)."""
    if reason not in STOCK_REASONS:
        return "reason", f"choose a reason: {', '.join(STOCK_REASONS)}"
    if delta == 0:
        return "delta", "enter how many units to add (or a negative number to remove)"
    if on_hand + delta < 0:
        return "delta", f"only {on_hand} on hand here: cannot remove {-delta}"
    return None
