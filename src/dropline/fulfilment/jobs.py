"""Scheduled fulfilment work, idempotent: complete stock movements that are due (restocking
hubs), keep each hub's delivery windows ``days_ahead`` days ahead from its template
(``window_templates``), and plan every window whose booking cutoff has passed. Each window is planned in its own
transaction, so one bad window never holds back the others, and a window planned already is
skipped (its status is no longer open). The solver runs with no transaction open
(``planning.plan_window_apart``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from dropline.clock import Clock
from dropline.db import Database
from dropline.errors import DomainError
from dropline.fulfilment.planning import plan_window_apart, windows_due_for_planning
from dropline.fulfilment.ports import RouteSolver
from dropline.fulfilment.service import complete_due_movements
from dropline.fulfilment.window_templates import roll_windows_forward

log = logging.getLogger("dropline.fulfilment")

# Enough for a window of a few dozen stops to reach a good plan; jobs run on shared workers.
DEFAULT_SECONDS_PER_WINDOW = 5.0


@dataclass
class JobReport:
    movements_completed: list[int] = field(default_factory=list)
    windows_planned: list[int] = field(default_factory=list)
    windows_failed: list[int] = field(default_factory=list)
    windows_created: dict[str, int] = field(default_factory=dict)  # per hub code


def run_fulfilment_jobs(db: Database, *, clock: Clock, solver: RouteSolver,
                        seconds_per_window: float = DEFAULT_SECONDS_PER_WINDOW,
                        failpoint: str | None = None) -> JobReport:
    report = JobReport()
    with db.transaction() as session:
        report.movements_completed = complete_due_movements(session, clock=clock)
    with db.transaction() as session:
        report.windows_created = roll_windows_forward(session, clock=clock)
    with db.transaction() as session:
        due = windows_due_for_planning(session, at=clock.now())
    for window_id in due:
        try:
            plan_window_apart(db, clock=clock, window_id=window_id, solver=solver,
                              max_seconds=seconds_per_window, failpoint=failpoint)
            report.windows_planned.append(window_id)
        except (DomainError, IntegrityError) as exc:  # planned meanwhile, or misconfigured
            log.warning("window %s not planned: %s", window_id, exc)
            report.windows_failed.append(window_id)
    return report
