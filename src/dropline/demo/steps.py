"""The registry of demo seed steps and the context each step receives.

A step is a named function of a :class:`DemoContext`, run in ``order`` (lowest first) inside the
one transaction of ``seed_demo``. Built-in steps use multiples of 100 so a module can slot its
own step between two of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database

StepFunction = Callable[["DemoContext"], "str | None"]


@dataclass(frozen=True)
class DemoStep:
    name: str
    order: int
    label: str  # shown next to the progress bar
    run: StepFunction  # returns a one-line note for the console, or None


@dataclass(frozen=True)
class PendingEvent:
    occurred_at: datetime
    type: str
    subject_type: str
    subject_id: str | int
    customer_id: int | None
    payload: dict[str, Any]


@dataclass
class DemoIds:
    """What the steps have created so far, for the steps after them."""

    families: dict[str, int] = field(default_factory=dict)  # slug -> id
    products: dict[str, int] = field(default_factory=dict)  # slug -> id
    variants: dict[str, int] = field(default_factory=dict)  # sku -> id
    locations: dict[str, int] = field(default_factory=dict)  # brand location code -> id
    customers: dict[int, Any] = field(default_factory=dict)  # id -> history.Shopper
    orders: list[int] = field(default_factory=list)
    admin_user_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free for steps from other modules


@dataclass
class DemoContext:
    session: Session
    db: Database
    clock: Clock
    now: datetime  # the moment the whole demo is seeded relative to; history lies before it
    settings: Settings
    seed: int
    customers: int  # how many customers to invent
    ids: DemoIds
    # Each step gets its own stream, seeded from (seed, step name): adding or removing a step
    # never changes what the other steps invent.
    rng: random.Random = field(default_factory=random.Random)
    summary: dict[str, str] = field(default_factory=dict)  # extra lines for the summary table
    # Where pictures go (a media.ports.MediaStore from the root), or None: steps skip them.
    media: Any = None
    events: list[PendingEvent] = field(default_factory=list)

    def record_later(
        self, *, at: datetime, type: str, subject_type: str, subject_id: str | int,
        payload: dict[str, Any], customer_id: int | None = None,
    ) -> None:
        """Queue a domain event that happened at ``at``. Queued events are written after the
        last step, oldest first, so the event log reads in time order across all steps."""
        self.events.append(PendingEvent(at, type, subject_type, subject_id, customer_id, payload))


def rng_for(seed: int, step_name: str) -> random.Random:
    # A str seed is hashed with SHA-512 by `random`, so it is stable across runs and processes.
    return random.Random(f"dropline-demo:{seed}:{step_name}")


_REGISTRY: dict[str, DemoStep] = {}


def demo_step(name: str, *, order: int, label: str | None = None) -> Callable[[StepFunction],
                                                                             StepFunction]:
    """Register the decorated function as a seed step."""

    def register(func: StepFunction) -> StepFunction:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.run is not func:
            raise ValueError(f"a demo step named {name!r} is already registered")
        _REGISTRY[name] = DemoStep(name=name, order=order, label=label or name, run=func)
        return func

    return register


def discover_step_modules(package: str = "dropline") -> list[str]:
    """Import every ``dropline.<domain>.demo`` module, so their ``@demo_step`` functions
    register themselves; returns the module names found."""
    root = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(root.__path__):
        if not info.ispkg or info.name == "demo":
            continue
        name = f"{package}.{info.name}.demo"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            found.append(name)
    return found


def registered_steps() -> list[DemoStep]:
    discover_step_modules()
    return ordered(_REGISTRY.values())


def ordered(steps: Iterable[DemoStep]) -> list[DemoStep]:
    return sorted(steps, key=lambda step: (step.order, step.name))
