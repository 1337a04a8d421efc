"""Reading and exporting the audit trail (the risk console, its API and the CLI). The trail
itself (the listeners, ``record_bulk``, the registry of audited models) is ``dropline.audit``,
below the domains."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.audit import AUDITED
from dropline.audit.models import AuditLog


@dataclass(frozen=True)
class AuditFilter:
    entity: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(f: AuditFilter) -> Any:
    query = select(AuditLog)
    if f.entity:
        query = query.where(AuditLog.entity == f.entity)
    if f.entity_id:
        query = query.where(AuditLog.entity_id == f.entity_id)
    if f.actor:
        query = query.where(AuditLog.actor == f.actor)
    if f.action:
        query = query.where(AuditLog.action == f.action)
    if f.since:
        query = query.where(AuditLog.occurred_at >= f.since)
    if f.until:
        query = query.where(AuditLog.occurred_at < f.until)
    return query


def list_audit(session: Session, f: AuditFilter, *, before_id: int | None = None,
               limit: int = 100) -> list[AuditLog]:
    """Newest first; page with ``before_id`` (the last id of the previous page)."""
    query = _query(f)
    if before_id:
        query = query.where(AuditLog.id < before_id)
    return list(session.scalars(query.order_by(AuditLog.id.desc()).limit(limit)))


CSV_COLUMNS = ("id", "occurred_at", "actor", "action", "entity", "entity_id", "column", "old",
               "new")


def iter_audit_csv(session: Session, f: AuditFilter, *, batch: int = 1000) -> Iterator[str]:
    """CSV text, oldest first, one line per changed column (so it pivots in a spreadsheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    after_id = 0
    while True:
        rows = list(session.scalars(_query(f).where(AuditLog.id > after_id)
                                    .order_by(AuditLog.id).limit(batch)))
        for row in rows:
            for column, (old, new) in sorted(row.changes.items()) or [("", (None, None))]:
                writer.writerow([row.id, row.occurred_at.isoformat(), _cell(row.actor),
                                 row.action, row.entity, _cell(row.entity_id), _cell(column),
                                 _cell(old), _cell(new)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < batch:
            return
        after_id = rows[-1].id


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...),
# +cmd|...); audited values are whatever a customer typed (a name, an address, a note).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading
    apostrophe (OWASP's advice for CSV injection), so ``=1+1`` reads ``'=1+1``."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):  # a number stays a number (-5 is no formula)
        return str(value)
    return csv_safe(str(value))


def audited_entities() -> list[str]:
    return sorted(model.__tablename__ for model in AUDITED)  # type: ignore[attr-defined]


def entity_ids(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values]
