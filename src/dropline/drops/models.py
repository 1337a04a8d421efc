"""Drop tables. The hot path touches four of them per purchase: one ``drop_buyers`` row (the
person's own), one ``drop_slots`` row (one of N), one new ``drop_holds`` row and, with the queue
on, the person's own ``drop_queue_entries`` row. No row is shared by every checkout."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK

SHARED_POOL = 0  # the pool of units under the drop's shared cap; a capped variant pools by its id


class Drop(Base):
    __tablename__ = "drops"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Units under the shared cap; variants with their own cap add theirs (see DropVariant.cap).
    shared_cap: Mapped[int] = mapped_column(Integer, default=0)
    per_person_limit: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    # The longest lead any member gets for this drop (0: no early access, whatever the tier).
    early_access_minutes: Mapped[int] = mapped_column(Integer, default=0)
    hold_ttl_seconds: Mapped[int] = mapped_column(Integer, default=600)
    offer_ttl_seconds: Mapped[int] = mapped_column(Integer, default=900)
    admission_per_minute: Mapped[int] = mapped_column(Integer, default=600)
    queue_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    slot_count: Mapped[int] = mapped_column(Integer)
    location_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("locations.id"))
    created_at: Mapped[datetime]
    # The brand's story of the drop, in Markdown (rendered and sanitised by drops.story).
    story: Mapped[str] = mapped_column(Text, default="", server_default="")

    __table_args__ = (
        CheckConstraint("shared_cap >= 0", name="shared_cap_non_negative"),
        CheckConstraint("per_person_limit >= 1", name="limit_positive"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("hold_ttl_seconds > 0 AND offer_ttl_seconds > 0", name="ttl_positive"),
        CheckConstraint("admission_per_minute >= 1", name="rate_positive"),
        CheckConstraint("slot_count >= 1", name="slots_positive"),
    )


class DropVariant(Base):
    """A variant sold in the drop; with ``cap`` it has its own pool of units, otherwise it
    shares the drop's cap with the other uncapped variants."""

    __tablename__ = "drop_variants"

    drop_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("drops.id", ondelete="CASCADE"),
                                         primary_key=True)
    variant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("variants.id"),
                                            primary_key=True)
    cap: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(500), default="", server_default="")  # on the page

    __table_args__ = (CheckConstraint("cap IS NULL OR cap >= 0", name="cap_non_negative"),)


class DropSlot(Base):
    """One of N rows over which a pool's units are pre-split, so concurrent takes update
    different rows. ``remaining`` can never go below zero (conditional UPDATE plus this check)."""

    __tablename__ = "drop_slots"

    drop_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("drops.id", ondelete="CASCADE"),
                                         primary_key=True)
    pool: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    slot_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    remaining: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("remaining >= 0", name="remaining_non_negative"),)


class DropBuyer(Base):
    """Per (drop, customer): units held or bought, changed by one conditional upsert, so the
    per-person limit holds across parallel requests; ``holding`` makes one active hold each."""

    __tablename__ = "drop_buyers"

    drop_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("drops.id", ondelete="CASCADE"),
                                         primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"),
                                             primary_key=True)
    units: Mapped[int] = mapped_column(Integer, default=0)
    holding: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (CheckConstraint("units >= 0", name="units_non_negative"),)


class HoldStatus(enum.StrEnum):
    active = "active"
    converted = "converted"  # an order was written from it (paid, or being paid)
    expired = "expired"
    released = "released"  # given up by the shopper
    payment_failed = "payment-failed"


class HoldSource(enum.StrEnum):
    queue = "queue"  # redeemed an admission token
    direct = "direct"  # the drop runs without a queue
    offer = "offer"  # a waitlist offer


class DropHold(Base):
    __tablename__ = "drop_holds"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    drop_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("drops.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    status: Mapped[HoldStatus] = mapped_column(Enum(HoldStatus, native_enum=False, length=16))
    source: Mapped[HoldSource] = mapped_column(Enum(HoldSource, native_enum=False, length=8))
    quantity: Mapped[int] = mapped_column(Integer)
    # [{"variant_id": 1, "quantity": 2}], and where the units came from: [[pool, slot, qty]].
    # JSON rather than child rows: one insert on the hot path instead of three.
    lines: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    takes: Mapped[list[list[int]]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id"),
                                                 unique=True)

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # The reclaim pass reads "active holds of this drop that have expired".
        Index("ix_drop_holds_drop_id_status_expires_at", "drop_id", "status", "expires_at"),
    )


class DropQueueEntry(Base):
    __tablename__ = "drop_queue_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    drop_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("drops.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"))
    sort_key: Mapped[float] = mapped_column(Float)
    joined_at: Mapped[datetime]
    ip: Mapped[str] = mapped_column(String(64), default="")
    tokens_issued: Mapped[int] = mapped_column(Integer, default=0)
    tokens_used: Mapped[int] = mapped_column(Integer, default=0)  # the highest n redeemed

    __table_args__ = (
        UniqueConstraint("drop_id", "customer_id"),
        Index("ix_drop_queue_entries_drop_id_sort_key", "drop_id", "sort_key"),
    )


class WaitlistStatus(enum.StrEnum):
    waiting = "waiting"
    offered = "offered"
    claimed = "claimed"
    lapsed = "lapsed"


class DropWaitlistEntry(Base):
    __tablename__ = "drop_waitlist"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)  # the order of the waitlist
    drop_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("drops.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"))
    variant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("variants.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[WaitlistStatus] = mapped_column(
        Enum(WaitlistStatus, native_enum=False, length=8))
    joined_at: Mapped[datetime]
    hold_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("drop_holds.id"))

    __table_args__ = (
        UniqueConstraint("drop_id", "customer_id"),
        Index("ix_drop_waitlist_drop_id_status", "drop_id", "status"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

