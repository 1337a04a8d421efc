"""Pop-ups (a pop-up location with dates, fed from a hub), their counter sales and close-out
counts, and A/B experiments with their exposure and conversion records."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


def _enum(kind: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(kind, native_enum=False, length=length,
                values_callable=lambda members: [m.value for m in members])


class PopupStatus(enum.StrEnum):
    planned = "planned"
    open = "open"
    closed = "closed"


class Popup(Base):
    """A pop-up shop: one location of kind pop-up, trading between two dates, stocked by
    transfers from ``hub`` and emptied back to it at close."""

    __tablename__ = "popups"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    location_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("locations.id", ondelete="CASCADE"), unique=True)
    hub_location_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("locations.id"))
    status: Mapped[PopupStatus] = mapped_column(_enum(PopupStatus))
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("closes_at > opens_at", name="dates_ordered"),)


class PopupSale(Base):
    """One sale over the counter: the order it wrote, who bought (the email for the receipt) and
    the card token saved at the terminal, which lets staff sign the buyer up in one tap."""

    __tablename__ = "popup_sales"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    popup_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("popups.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    card_token: Mapped[str | None] = mapped_column(String(64))
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    sold_at: Mapped[datetime]


class PopupCount(Base):
    """The close-out count of one variant: what the system expected, what staff counted, and
    what went back to the hub (the counted units)."""

    __tablename__ = "popup_counts"

    popup_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("popups.id", ondelete="CASCADE"), primary_key=True)
    variant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("variants.id"), primary_key=True)
    expected: Mapped[int]
    counted: Mapped[int]
    transferred_back: Mapped[int] = mapped_column(default=0)

    __table_args__ = (CheckConstraint("counted >= 0 AND expected >= 0", name="non_negative"),)


class ExperimentStatus(enum.StrEnum):
    running = "running"
    stopped = "stopped"


class Experiment(Base):
    """An A/B test on drop or product pages. ``variants`` is a list of
    ``{"key": "a", "label": ..., "headline": ..., "image": ..., "layout": ...}``; ``target``
    is a page slug, or empty for every page of ``page_kind``."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    page_kind: Mapped[str] = mapped_column(String(16))  # "product" | "drop"
    target: Mapped[str] = mapped_column(String(120), default="")
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[ExperimentStatus] = mapped_column(_enum(ExperimentStatus))
    created_at: Mapped[datetime]


class ExperimentObservation(Base):
    """One exposure or conversion of one (hashed) visitor; unique per kind, so a reload or a
    replay counts once."""

    __tablename__ = "experiment_observations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("experiments.id", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(String(16))
    visitor: Mapped[str] = mapped_column(String(64))  # a hash, never the raw cookie
    kind: Mapped[str] = mapped_column(String(16))  # "exposure" | "conversion"
    occurred_at: Mapped[datetime]

    __table_args__ = (
        Index("ux_experiment_observations_once", "experiment_id", "visitor", "kind",
              unique=True),
    )
