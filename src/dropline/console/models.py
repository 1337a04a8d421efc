from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class PlaybookSnapshot(Base):
    """A playbook as it read in one ISO week (its Markdown), kept so the console can say what
    changed since last week. One per playbook and week; never rewritten."""

    __tablename__ = "playbook_snapshots"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    week: Mapped[str] = mapped_column(String(8))  # ISO week, "2026-W49"
    markdown: Mapped[str] = mapped_column(Text)
    taken_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("name", "week"),)
