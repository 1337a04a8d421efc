"""Playbooks kept week by week: a snapshot of each playbook's Markdown per ISO week (taken by
a background job, or on demand), and what changed since the week before, so the templates the
seed says to iterate weekly show their iteration.

    snapshot_playbooks(...)   this week's snapshot of every playbook, once (idempotent)
    changes_since_last_week   the lines added and removed against the latest earlier week
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.console import playbooks
from dropline.console.document import to_markdown
from dropline.console.models import PlaybookSnapshot
from dropline.db import Database
from dropline.errors import DomainError

__all__ = ["Changes", "changes_since_last_week", "iso_week", "snapshot_playbooks"]


def iso_week(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def snapshot_playbooks(db: Database, *, clock: Clock, currency: str) -> int:
    """Takes this week's snapshot of each playbook that has none yet; returns how many were
    taken. A playbook that cannot be built yet (nothing scheduled...) is skipped. Two workers
    at once take each snapshot once: the (name, week) key refuses the second."""
    week = iso_week(clock.now())
    with db.transaction() as session:
        have = set(session.scalars(select(PlaybookSnapshot.name)
                                   .where(PlaybookSnapshot.week == week)))
    taken = 0
    for name in playbooks.PLAYBOOKS:
        if name in have:
            continue
        try:
            with db.transaction() as session:
                doc = playbooks.build(name, session, clock=clock, currency=currency)
                session.add(PlaybookSnapshot(name=name, week=week, markdown=to_markdown(doc),
                                             taken_at=clock.now()))
            taken += 1
        except DomainError:
            continue
        except IntegrityError:
            continue  # another worker took it first
    return taken


@dataclass(frozen=True)
class Changes:
    since_week: str
    since: datetime
    added: list[str]
    removed: list[str]

    @property
    def unchanged(self) -> bool:
        return not self.added and not self.removed


def changes_since_last_week(session: Session, *, name: str, current: str,
                            clock: Clock) -> Changes | None:
    """The lines of ``current`` (the playbook's Markdown now) added and removed since the
    latest snapshot of an earlier week; None if there is none yet."""
    before = session.scalars(
        select(PlaybookSnapshot).where(PlaybookSnapshot.name == name,
                                       PlaybookSnapshot.week < iso_week(clock.now()))
        .order_by(PlaybookSnapshot.week.desc()).limit(1)).first()
    if before is None:
        return None
    added, removed = [], []
    for line in difflib.unified_diff(before.markdown.splitlines(), current.splitlines(),
                                     lineterm="", n=0):
        if line.startswith(("+++", "---", "@@")):
            continue
        if line.startswith("+") and line[1:].strip():
            added.append(line[1:])
        elif line.startswith("-") and line[1:].strip():
            removed.append(line[1:])
    return Changes(before.week, before.taken_at, added, removed)
