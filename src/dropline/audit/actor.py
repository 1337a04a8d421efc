"""Who is acting, for the audit trail: a context variable the web layer fills in.

The variable holds a small mutable box, set once per request by the web layer's
``ActorMiddleware`` (``dropline.web.actor``). FastAPI runs sync dependencies and endpoints in
worker threads, each with a *copy* of the context, so a value set in a dependency would never
reach the endpoint; a box shared by all the copies does. Outside a request (CLI, jobs, tests) the actor is ``system`` unless ``acting_as`` says
otherwise. Importing nothing from the domains keeps this module safe to import anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from dropline.clock import Clock, SystemClock

__all__ = ["SYSTEM", "ActorBox", "acting_as", "audit_now", "current_actor", "set_actor"]

SYSTEM = "system"


@dataclass
class ActorBox:
    actor: str = SYSTEM
    clock: Clock = field(default_factory=SystemClock)


_current: ContextVar[ActorBox | None] = ContextVar("dropline_actor", default=None)


def current_actor() -> str:
    box = _current.get()
    return box.actor if box is not None else SYSTEM


def audit_now() -> datetime:
    """The request's injected clock (a FrozenClock in tests), else the system clock."""
    box = _current.get()
    return (box.clock if box is not None else SystemClock()).now()


def set_actor(actor: str) -> None:
    """Called by the web dependencies once they know who is calling ("customer:3",
    "token:7", "admin:1"). Outside a request it opens a box for the current context."""
    box = _current.get()
    if box is None:
        _current.set(ActorBox(actor=actor[:120]))
    else:
        box.actor = actor[:120]


@contextmanager
def acting_as(actor: str, clock: Clock | None = None) -> Iterator[ActorBox]:
    """For CLI commands, jobs and tests: changes made inside are attributed to ``actor``."""
    box = ActorBox(actor=actor[:120], clock=clock or SystemClock())
    token = _current.set(box)
    try:
        yield box
    finally:
        _current.reset(token)
