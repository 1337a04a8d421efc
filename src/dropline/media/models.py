"""The media table: one row per uploaded image, owned by a product, a variant, a drop or a
membership tier. The files (the renditions) live in the media store under content-hashed
names; the row lists them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dropline.db import Base, BigIntPK


class MediaOwner(enum.StrEnum):
    product = "product"
    variant = "variant"
    drop = "drop"
    tier = "tier"


class MediaAsset(Base):
    __tablename__ = "media_assets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    owner_kind: Mapped[MediaOwner] = mapped_column(Enum(MediaOwner, native_enum=False, length=16))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer, default=0)  # first is the main image
    alt: Mapped[str] = mapped_column(String(300), default="")
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the cleaned full-size pixels
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    placeholder: Mapped[str] = mapped_column(Text, default="")  # a tiny data: URI
    # [{"name", "format", "width", "height", "bytes"}], every rendition in the store
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_media_assets_owner", "owner_kind", "owner_id", "position"),)
