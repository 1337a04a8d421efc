"""Browser sessions, shared by customers (the storefront) and admins (the console).

A session is a random token in an HttpOnly cookie; only its SHA-256 is stored, so a database
leak is no login. A session table has ``token_hash``, an owner id column, ``created_at``,
``expires_at`` and ``revoked_at``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from dropline.clock import Clock
from dropline.security import new_token, token_digest


def start(session: Session, *, clock: Clock, model: type[Any], owner: str, owner_id: int,
          lifetime: timedelta) -> str:
    """Returns the raw token for the cookie."""
    token = new_token()
    now = clock.now()
    session.add(model(token_hash=token_digest(token), created_at=now,
                      expires_at=now + lifetime, **{owner: owner_id}))
    session.flush()
    return token


def owner_of(session: Session, *, clock: Clock, model: type[Any],
             owner: InstrumentedAttribute[int], token: str) -> int | None:
    """The owner id of a live (unrevoked, unexpired) session, else None."""
    return session.scalar(
        select(owner).where(model.token_hash == token_digest(token),
                            model.revoked_at.is_(None), model.expires_at > clock.now()))


def revoke(session: Session, *, clock: Clock, model: type[Any], token: str) -> None:
    session.execute(update(model)
                    .where(model.token_hash == token_digest(token), model.revoked_at.is_(None))
                    .values(revoked_at=clock.now()))
