"""Risk and returns settings: defaults here, overrides in the ``risk_settings`` table (set by
the API, the CLI or the console), so the policy page and the scoring read the same values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import InvalidInput
from dropline.risk.models import RiskSetting
from dropline.risk.rules import DEFAULT_WEIGHTS, Thresholds

REASONS = {
    "changed-mind": "Changed my mind",
    "no-longer-needed": "No longer needed",
    "wrong-size": "Wrong size or volume",
    "not-as-described": "Not as described",
    "defective": "Arrived faulty",
    "damaged-in-transit": "Damaged in transit",
    "wrong-item": "Wrong item sent",
}

DEFAULTS: dict[str, Any] = {
    "return_window_days": 30,
    "restocking_fee_bps": 1000,
    "fee_exempt_reasons": ["defective", "damaged-in-transit", "wrong-item", "not-as-described"],
    "review_score": 40,
    "min_orders_for_rate": 3,
    "max_return_rate": 0.5,
    "norm_multiplier": 2.0,
    "value_multiplier": 3.0,
    "wardrobing_days": 7,
    "wardrobing_families": ["eau-de-parfum", "restored-diffusers"],
    "event_dates": [],
    "event_window_days": 3,
    "velocity_days": 30,
    "velocity_refunds": 3,
    "linked_min_returns": 2,
    "weights": dict(DEFAULT_WEIGHTS),
}
_INTS = {"return_window_days": (0, 3650), "restocking_fee_bps": (0, 10_000),
         "review_score": (1, 100), "min_orders_for_rate": (1, 1000), "wardrobing_days": (0, 365),
         "event_window_days": (0, 60), "velocity_days": (1, 365), "velocity_refunds": (1, 1000),
         "linked_min_returns": (1, 1000)}
_FLOATS = {"max_return_rate": (0.0, 1.0), "norm_multiplier": (0.0, 100.0),
           "value_multiplier": (0.0, 100.0)}


@dataclass(frozen=True)
class RiskConfig:
    return_window_days: int
    restocking_fee_bps: int
    fee_exempt_reasons: tuple[str, ...]
    thresholds: Thresholds
    raw: dict[str, Any]


def _check(key: str, value: Any) -> Any:
    """Validates one setting; the error says what is acceptable."""
    if key not in DEFAULTS:
        raise InvalidInput(f"unknown setting {key!r}; known: {', '.join(sorted(DEFAULTS))}",
                           field="key")
    if key in _INTS:
        low, high = _INTS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidInput(f"{key} must be a whole number from {low} to {high}", field=key)
    elif key in _FLOATS:
        low_f, high_f = _FLOATS[key]
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low_f <= value <= high_f:
            raise InvalidInput(f"{key} must be a number from {low_f} to {high_f}", field=key)
        value = float(value)
    elif key == "weights":
        if not isinstance(value, dict) or set(value) - set(DEFAULT_WEIGHTS) or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100
                for v in value.values()):
            raise InvalidInput(f"weights maps signal names ({', '.join(DEFAULT_WEIGHTS)}) to "
                               "points from 0 to 100", field=key)
        value = {**DEFAULT_WEIGHTS, **value}
    elif key == "event_dates":
        try:
            value = sorted({date.fromisoformat(str(v)).isoformat() for v in value})
        except (TypeError, ValueError):
            raise InvalidInput("event_dates is a list of YYYY-MM-DD dates", field=key) from None
    else:  # lists of short strings
        if not isinstance(value, list) or len(value) > 50 or not all(
                isinstance(v, str) and 0 < len(v) <= 64 for v in value):
            raise InvalidInput(f"{key} is a list of up to 50 short names", field=key)
    return value


def load_config(session: Session) -> RiskConfig:
    raw = dict(DEFAULTS)
    for row in session.scalars(select(RiskSetting)):
        if row.key in DEFAULTS:
            raw[row.key] = row.value
    thresholds = Thresholds(
        review_score=raw["review_score"], min_orders_for_rate=raw["min_orders_for_rate"],
        max_return_rate=raw["max_return_rate"], norm_multiplier=raw["norm_multiplier"],
        value_multiplier=raw["value_multiplier"], wardrobing_days=raw["wardrobing_days"],
        wardrobing_families=tuple(raw["wardrobing_families"]),
        event_dates=tuple(date.fromisoformat(d) for d in raw["event_dates"]),
        event_window_days=raw["event_window_days"], velocity_days=raw["velocity_days"],
        velocity_refunds=raw["velocity_refunds"], linked_min_returns=raw["linked_min_returns"],
        weights={**DEFAULT_WEIGHTS, **raw["weights"]})
    return RiskConfig(raw["return_window_days"], raw["restocking_fee_bps"],
                      tuple(raw["fee_exempt_reasons"]), thresholds, raw)


def update_settings(session: Session, *, clock: Clock, values: dict[str, Any]) -> RiskConfig:
    """Validates every value first, so a bad one changes nothing."""
    checked = {key: _check(key, value) for key, value in values.items()}
    for key, value in checked.items():
        row = session.get(RiskSetting, key)
        if row is None:
            session.add(RiskSetting(key=key, value=value, updated_at=clock.now()))
        else:
            row.value, row.updated_at = value, clock.now()
    session.flush()
    return load_config(session)
