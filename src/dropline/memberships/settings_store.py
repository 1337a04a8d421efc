"""Run-time membership settings kept in the database (``membership_settings``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.memberships.models import MembershipSetting


def read_setting(session: Session, key: str) -> Any:
    row = session.get(MembershipSetting, key)
    return None if row is None else row.value


def write_setting(session: Session, *, clock: Clock, key: str, value: Any) -> None:
    row = session.get(MembershipSetting, key)
    if row is None:
        session.add(MembershipSetting(key=key, value=value, updated_at=clock.now()))
    else:
        row.value, row.updated_at = value, clock.now()
    session.flush()
