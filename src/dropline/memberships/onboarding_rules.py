"""Onboarding flows and their measured effect, as pure functions over plain data.

A brand runs one or more **flows** (steps, their days or triggering events, channel and
content), each for a tier and/or a member segment; a new member gets the most specific flow
that matches. Each flow keeps a **holdout**: a share of its new members drawn at random gets no
step at all, so the flow's effect on retention is measured against members like them who did
not get it, rather than read off "members who finished it stayed longer" (which mostly says
that members who stay longer get further through anything).

    choose_flow(flows, tier=..., segment=...)   the flow a new member gets
    held_out(draw, share)                        the random draw -> holdout or not
    retention_effect(flow, holdout)              retention difference with a 90 % interval
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dropline.errors import InvalidInput
from dropline.memberships.rules import DEFAULT_ONBOARDING, OnboardingStep

__all__ = ["DEFAULT_FLOW", "Effect", "MAX_HOLDOUT", "OnboardingFlow", "choose_flow",
           "flows_as_config", "flows_from_config", "held_out", "retention_effect"]

MAX_HOLDOUT = 0.5
Z_90 = 1.6449  # two-sided 90 %
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class OnboardingFlow:
    name: str
    steps: tuple[OnboardingStep, ...]
    tier: str | None = None  # a tier's slug; None: any tier
    segment: str | None = None  # a member segment (founding, seasonal, utility...); None: any
    # Share of the flow's new members drawn at random to get none of it (the control group).
    holdout_share: float = 0.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidInput(f"flow name {self.name!r}: lower-case letters, digits and "
                               "hyphens, at most 40", field="name")
        if not self.steps:
            raise InvalidInput(f"flow {self.name!r} has no steps", field="steps")
        if len({s.key for s in self.steps}) != len(self.steps):
            raise InvalidInput(f"flow {self.name!r}: step keys must be unique", field="steps")
        if not 0 <= self.holdout_share <= MAX_HOLDOUT:
            raise InvalidInput(f"flow {self.name!r}: holdout_share must be 0 to {MAX_HOLDOUT}",
                               field="holdout_share")

    @property
    def specificity(self) -> int:
        return (2 if self.tier else 0) + (1 if self.segment else 0)


DEFAULT_FLOW = OnboardingFlow("default", DEFAULT_ONBOARDING)


def flows_from_config(data: Any) -> tuple[OnboardingFlow, ...]:
    """Flows from their stored or uploaded form (a list of objects, each with ``steps``); an
    empty or missing config is the built-in default flow. Raises ``InvalidInput`` saying what
    is wrong and where."""
    if not data:
        return (DEFAULT_FLOW,)
    if not isinstance(data, list):
        raise InvalidInput("onboarding flows are a list of flows", field="flows")
    flows = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise InvalidInput(f"flow {index + 1} is not an object", field="flows")
        try:
            raw_steps = item.get("steps") or []
            steps = tuple(OnboardingStep(**step) for step in raw_steps)
            flows.append(OnboardingFlow(
                name=str(item.get("name", "")), steps=steps, tier=item.get("tier") or None,
                segment=item.get("segment") or None,
                holdout_share=float(item.get("holdout_share", 0.0))))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"flow {index + 1}: {exc}", field="flows") from None
    keys = [(f.tier, f.segment) for f in flows]
    if len(set(keys)) != len(keys):
        raise InvalidInput("two flows are for the same tier and segment", field="flows")
    if len({f.name for f in flows}) != len(flows):
        raise InvalidInput("flow names must be unique", field="flows")
    return tuple(flows)


def flows_as_config(flows: Sequence[OnboardingFlow]) -> list[dict[str, Any]]:
    return [{"name": f.name, "tier": f.tier, "segment": f.segment,
             "holdout_share": f.holdout_share, "steps": [asdict(s) for s in f.steps]}
            for f in flows]


def choose_flow(flows: Sequence[OnboardingFlow], *, tier: str | None,
                segment: str | None) -> OnboardingFlow:
    """The most specific flow for this member: tier and segment, then tier, then segment,
    then one for everyone; the built-in default if none matches."""
    matching = [f for f in flows if (f.tier is None or f.tier == tier)
                and (f.segment is None or f.segment == segment)]
    if not matching:
        return DEFAULT_FLOW
    return max(matching, key=lambda f: f.specificity)


def held_out(draw: float, share: float) -> bool:
    """``draw`` is uniform on [0, 1) from the caller's random source."""
    return draw < share


@dataclass(frozen=True)
class Effect:
    """Retention of the flow's members minus the holdout's, with a 90 % interval (Newcombe's
    hybrid score interval, good at small counts and rates near 0 or 1)."""

    flow_members: int
    holdout_members: int
    flow_rate: float | None
    holdout_rate: float | None
    difference: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)
        return {"flow_members": self.flow_members, "holdout_members": self.holdout_members,
                "flow_rate": r(self.flow_rate), "holdout_rate": r(self.holdout_rate),
                "difference": r(self.difference), "low": r(self.low), "high": r(self.high)}


def _wilson(successes: int, n: int, z: float) -> tuple[float, float, float]:
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (p, 0.0 if successes == 0 else max(0.0, centre - half),
            1.0 if successes == n else min(1.0, centre + half))


def retention_effect(flow: Sequence[bool], holdout: Sequence[bool], *,
                     z: float = Z_90) -> Effect:
    """``flow``/``holdout``: one flag per member old enough to tell (still a member after N
    days). Rates and the interval are None where a group is empty."""
    n1, n2 = len(flow), len(holdout)
    p1 = _wilson(sum(flow), n1, z) if n1 else None
    p2 = _wilson(sum(holdout), n2, z) if n2 else None
    if p1 is None or p2 is None:
        return Effect(n1, n2, p1[0] if p1 else None, p2[0] if p2 else None, None, None, None)
    (r1, l1, u1), (r2, l2, u2) = p1, p2
    difference = r1 - r2
    low = difference - math.sqrt((r1 - l1) ** 2 + (u2 - r2) ** 2)
    high = difference + math.sqrt((u1 - r1) ** 2 + (r2 - l2) ** 2)
    return Effect(n1, n2, r1, r2, difference, low, high)
