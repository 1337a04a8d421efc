"""Writing a drop's story and its per-variant notes. Flush, never commit."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.drops.models import Drop, DropVariant
from dropline.drops.story import MAX_NOTE_CHARS, MAX_STORY_CHARS
from dropline.errors import InvalidInput, NotFound
from dropline.events.service import record_event


def set_story(session: Session, *, clock: Clock, drop_id: int, story: str | None = None,
              notes: Mapping[int, str] | None = None) -> Drop:
    """Replaces the story (when given) and the notes of the variants named (a variant not in
    the drop is refused, and then nothing changes)."""
    drop = session.get(Drop, drop_id)
    if drop is None:
        raise NotFound(f"drop {drop_id} not found")
    if story is not None and len(story) > MAX_STORY_CHARS:
        raise InvalidInput(f"a story has at most {MAX_STORY_CHARS} characters", field="story")
    notes = dict(notes or {})
    rows = {row.variant_id: row for row in session.scalars(
        select(DropVariant).where(DropVariant.drop_id == drop_id))}
    if unknown := sorted(set(notes) - set(rows)):
        raise InvalidInput(f"variant(s) {', '.join(map(str, unknown))} are not in this drop",
                           field="notes")
    if any(len(n) > MAX_NOTE_CHARS for n in notes.values()):
        raise InvalidInput(f"a note has at most {MAX_NOTE_CHARS} characters", field="notes")
    if story is not None:
        drop.story = story
    for variant_id, note in notes.items():
        rows[variant_id].note = note.strip()
    session.flush()
    record_event(session, clock=clock, type="drop.story_changed", subject_type="drop",
                 subject_id=drop.id, payload={"story_chars": len(drop.story),
                                              "notes": sorted(notes)})
    return drop
