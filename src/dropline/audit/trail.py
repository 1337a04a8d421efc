"""The shop-wide audit trail: ONE mechanism, a pair of SQLAlchemy session listeners over a
registry of audited models, writing ``audit_log`` rows in the same transaction as the change.
It sits below the domains and imports none of them: the composition root fills the registry
with the audited models and their column rules and installs the listeners (``install``).

* ``after_flush`` sees every object the unit of work inserted, changed or deleted, with each
  attribute's history (old -> new), and writes one row per object.
* ``do_orm_execute`` catches the ORM-enabled ``update(Model)`` statements the services use for
  counters and conditional state moves (``refunded_amount = refunded_amount + x WHERE ...``),
  which bypass the unit of work: it reads the matching rows before, runs the statement, reads
  them after, and writes the differences. The "before" read takes no lock, so under a race
  the recorded old value may be one a concurrent transaction had just replaced; the new
  value is always the one this transaction wrote.

The actor comes from ``audit.actor`` (filled by the web layer; ``system`` otherwise). Bulk
``insert(Model)`` statements (history imports, the demo's order lines) are not logged: they
create history, they do not change it. Code that writes audited rows with its own bulk SQL (the
drop batch writer: thousands of orders a second) records them with ``record_bulk``.

Rows are never updated or deleted: there is no API for it, and migration 0007 adds a trigger
refusing UPDATE (and DELETE on PostgreSQL; SQLite keeps DELETE so the test suite can empty
tables between tests)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, inspect, select, tuple_
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from dropline import bulk
from dropline.audit.actor import audit_now, current_actor
from dropline.audit.models import AuditLog

__all__ = ["AUDITED", "Audited", "install", "record_bulk"]


@dataclass(frozen=True)
class Audited:
    """Which columns of a model are audited (attribute keys); None means all."""

    columns: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()

    def keys(self, model: type) -> list[str]:
        keys = [attr.key for attr in inspect(model).column_attrs]
        chosen = keys if self.columns is None else [k for k in keys if k in self.columns]
        return [k for k in chosen if k not in self.ignore]


# The registry of audited models and their column rules, filled by the composition root
# (``install``, from ``dropline.bootstrap``): a model in it has its changes audited everywhere.
AUDITED: dict[type, Audited] = {}
_KEYS: dict[type, list[str]] = {}


def _keys(model: type) -> list[str]:
    if model not in _KEYS:
        _KEYS[model] = AUDITED[model].keys(model)
    return _KEYS[model]


_AS_IS = frozenset({int, str, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """JSON-safe: enums by value, times as ISO 8601."""
    if type(value) in _AS_IS:  # most values: one set look-up (the batch writer's thousands)
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _row(action: str, model: type, entity_id: Any, changes: dict[str, list[Any]]
         ) -> dict[str, Any]:
    return {"occurred_at": audit_now(), "actor": current_actor(), "action": action,
            "entity": model.__tablename__, "entity_id": str(entity_id)[:64],  # type: ignore
            "changes": changes}


def _identity(obj: Any) -> str:
    # The primary key from the instance: new objects have no identity key until the flush
    # has finished, but their key values are already set.
    key = inspect(obj).mapper.primary_key_from_instance(obj)
    return "/".join("?" if v is None else str(v) for v in key)


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    rows: list[dict[str, Any]] = []
    for obj in session.new:
        model = type(obj)
        if model in AUDITED:
            rows.append(_row("create", model, _identity(obj), {
                key: [None, _plain(getattr(obj, key, None))] for key in _keys(model)}))
    for obj in session.dirty:
        model = type(obj)
        if model not in AUDITED or not session.is_modified(obj, include_collections=False):
            continue
        state = inspect(obj)
        changes: dict[str, list[Any]] = {}
        for key in _keys(model):
            history = state.attrs[key].history
            if history.added or history.deleted:
                old = history.deleted[0] if history.deleted else None
                new = history.added[0] if history.added else None
                if old != new:
                    changes[key] = [_plain(old), _plain(new)]
        if changes:
            rows.append(_row("update", model, _identity(obj), changes))
    for obj in session.deleted:
        model = type(obj)
        if model in AUDITED:
            rows.append(_row("delete", model, _identity(obj), {
                key: [_plain(getattr(obj, key, None)), None] for key in _keys(model)}))
    if rows:
        session.connection().execute(AuditLog.__table__.insert(), rows)


def _on_orm_execute(state: ORMExecuteState) -> Any:
    if not (state.is_update or state.is_delete) or state.execution_options.get("_audit_skip"):
        return None
    mapper = state.bind_mapper
    if mapper is None or mapper.class_ not in AUDITED:
        return None
    model = mapper.class_
    where = state.statement.whereclause  # type: ignore[attr-defined]
    pk = list(mapper.primary_key)
    cols = [mapper.column_attrs[key].columns[0] for key in _keys(model)]
    query = select(*pk, *cols)
    if where is not None:
        query = query.where(where)
    skip = {"_audit_skip": True}
    before = {tuple(row[:len(pk)]): row[len(pk):]
              for row in state.session.execute(query, execution_options=skip)}
    result = state.invoke_statement()
    if not before:
        return result
    keys = _keys(model)
    rows: list[dict[str, Any]] = []
    if state.is_delete:
        for ident, old in before.items():
            rows.append(_row("delete", model, "/".join(map(str, ident)),
                             {k: [_plain(v), None] for k, v in zip(keys, old, strict=True)}))
    else:
        key_col = tuple_(*pk) if len(pk) > 1 else pk[0]
        idents = list(before)
        match = key_col.in_(idents if len(pk) > 1 else [i[0] for i in idents])
        after = {tuple(row[:len(pk)]): row[len(pk):] for row in state.session.execute(
            select(*pk, *cols).where(match), execution_options=skip)}
        for ident, old in before.items():
            new = after.get(ident)
            if new is None:
                continue
            changes = {k: [_plain(o), _plain(n)]
                       for k, o, n in zip(keys, old, new, strict=True) if o != n}
            if changes:
                rows.append(_row("update", model, "/".join(map(str, ident)), changes))
    if rows:
        state.session.connection().execute(AuditLog.__table__.insert(), rows)
    return result


def record_bulk(session: Session, model: type, action: str, *, at: datetime,
                entries: Sequence[tuple[Any, str, dict[str, tuple[Any, Any]]]]) -> None:
    """Audit rows for changes written by bulk SQL, which the listeners above do not see (the
    drop batch writer's orders and payments): one row per (entity id, actor, {column: (old,
    new)}), in the same transaction. As the listeners do, only the model's audited columns are
    kept and values are made JSON-safe. One statement for them all on PostgreSQL. A model the
    registry does not hold is not audited, as with the listeners."""
    if model not in AUDITED:
        return
    keys = _keys(model)
    table = model.__tablename__  # type: ignore[attr-defined]
    memo: dict[int, Any] = {}  # a batch's rows share their timestamps: each formatted once

    def plain(value: Any) -> Any:
        if type(value) in _AS_IS:
            return value
        if id(value) not in memo:
            memo[id(value)] = _plain(value)
        return memo[id(value)]

    if action == "create":  # a create lists every audited column, as the listener's do
        rows = [(at, actor[:120], action, table, str(entity_id)[:64],
                 {k: [None, plain(changes[k][1]) if k in changes else None] for k in keys})
                for entity_id, actor, changes in entries]
    else:
        rows = [(at, actor[:120], action, table, str(entity_id)[:64],
                 {k: [plain(old), plain(new)] for k, (old, new) in changes.items()
                  if k in keys})
                for entity_id, actor, changes in entries]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        bulk.insert_unnest(session, "audit_log", [
            ("occurred_at", "timestamptz"), ("actor", "text"), ("action", "text"),
            ("entity", "text"), ("entity_id", "text"), ("changes", "json")], rows)
        return
    names = ("occurred_at", "actor", "action", "entity", "entity_id", "changes")
    session.connection().execute(AuditLog.__table__.insert(),
                                 [dict(zip(names, row, strict=True)) for row in rows])


def install(audited: Mapping[type, Audited]) -> None:
    """Adds ``audited`` to the registry and listens on every Session of the process.
    Idempotent; called by the composition root (``bootstrap.install_listeners``), never at
    import time."""
    AUDITED.update(audited)
    _KEYS.clear()
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _on_orm_execute)
