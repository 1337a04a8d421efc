"""Browser sessions, shared by customers (the storefront) and admins (the console).

A session is a random token in an HttpOnly cookie; only its SHA-256 is stored, so a database
leak is no login. A session table has ``token_hash``, an owner id column, ``created_at``,
``expires_at``, ``revoked_at`` and ``last_seen_at``.

A session ends at ``expires_at`` (its absolute lifetime) or once it has gone unused for the
caller's ``idle`` time (sliding expiry). ``last_seen_at`` is written at most once a
``TOUCH_EVERY``, so browsing does not turn every page view into a write; the idle limit is
therefore honoured to within that minute."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from dropline.clock import Clock
from dropline.security import new_token, token_digest

TOUCH_EVERY = timedelta(minutes=1)


def start(session: Session, *, clock: Clock, model: type[Any], owner: str, owner_id: int,
          lifetime: timedelta, **columns: Any) -> str:
    """Returns the raw token for the cookie."""
    token = new_token()
    now = clock.now()
    session.add(model(token_hash=token_digest(token), created_at=now, last_seen_at=now,
                      expires_at=now + lifetime, **{owner: owner_id}, **columns))
    session.flush()
    return token


def owner_of(session: Session, *, clock: Clock, model: type[Any],
             owner: InstrumentedAttribute[int], token: str, idle: timedelta,
             where: tuple[ColumnElement[bool], ...] = ()) -> int | None:
    """The owner id of a live session (unrevoked, unexpired, used within ``idle``, and meeting
    ``where``), else None. Using it slides its idle expiry."""
    now = clock.now()
    row = session.execute(
        select(owner, model.id, model.last_seen_at)
        .where(model.token_hash == token_digest(token), model.revoked_at.is_(None),
               model.expires_at > now, model.last_seen_at > now - idle, *where)).first()
    if row is None:
        return None
    owner_id, session_id, last_seen_at = row
    if now - last_seen_at >= TOUCH_EVERY:
        session.execute(update(model).where(model.id == session_id).values(last_seen_at=now))
    return owner_id


def revoke(session: Session, *, clock: Clock, model: type[Any], token: str) -> None:
    session.execute(update(model)
                    .where(model.token_hash == token_digest(token), model.revoked_at.is_(None))
                    .values(revoked_at=clock.now()))


def revoke_all(session: Session, *, clock: Clock, model: type[Any],
               owner: InstrumentedAttribute[int], owner_id: int, keep: str | None = None) -> int:
    """Ends every live session of an owner (a changed or reset password), except the one whose
    token is ``keep``; returns how many ended."""
    query = update(model).where(owner == owner_id, model.revoked_at.is_(None))
    if keep is not None:
        query = query.where(model.token_hash != token_digest(keep))
    return session.execute(query.values(revoked_at=clock.now())).rowcount or 0
