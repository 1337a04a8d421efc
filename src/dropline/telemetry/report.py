"""Telemetry results as plain JSON values, shared by the API and ``--json`` on the CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any


def plain(value: Any) -> Any:
    """Dataclasses to dicts, dates to ISO strings, non-finite floats to None (JSON has no
    infinity), mapping keys to strings; anything else JSON already knows stays as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # a NumPy scalar
        return plain(value.item())
    return value
