from __future__ import annotations

import enum

from sqlalchemy import BigInteger, CheckConstraint, Enum, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class LocationKind(enum.StrEnum):
    central_warehouse = "central-warehouse"
    micro_hub = "micro-hub"
    micro_factory = "micro-factory"
    pop_up = "pop-up"


class Location(Base):
    """A place that holds stock. The fulfilment module adds vehicles, windows and costs."""

    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[LocationKind] = mapped_column(Enum(LocationKind, native_enum=False, length=24))
    address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(default=True)


class StockLevel(Base):
    """Units on hand of one variant at one location. Changed only by database arithmetic in a
    conditional UPDATE (``on_hand = on_hand - q WHERE on_hand >= q``), never read-modify-write."""

    __tablename__ = "stock_levels"

    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    on_hand: Mapped[int] = mapped_column(default=0)

    __table_args__ = (CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),)
