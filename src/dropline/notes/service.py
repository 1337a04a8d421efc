"""Add and list staff notes (flush, never commit)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import InvalidInput
from dropline.notes.models import StaffNote

Subject = Literal["order", "customer"]
MAX_NOTE = 2000


def add_note(session: Session, *, clock: Clock, subject_type: Subject, subject_id: int,
             author: str, body: str) -> StaffNote:
    text = body.strip()
    if not text:
        raise InvalidInput("Write the note first.", field="body")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"A note has at most {MAX_NOTE} characters.", field="body")
    note = StaffNote(subject_type=subject_type, subject_id=subject_id, author=author[:120],
                     body=text, created_at=clock.now())
    session.add(note)
    session.flush()
    return note


def notes_on(session: Session, *, subject_type: Subject, subject_id: int) -> list[StaffNote]:
    return list(session.scalars(select(StaffNote).where(
        StaffNote.subject_type == subject_type, StaffNote.subject_id == subject_id)
        .order_by(StaffNote.id.desc())))


def delete_notes_on(session: Session, *, subject_type: Subject, subject_id: int) -> int:
    return session.execute(delete(StaffNote).where(
        StaffNote.subject_type == subject_type, StaffNote.subject_id == subject_id)).rowcount
