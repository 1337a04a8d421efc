from __future__ import annotations

from dropline.media.models import MediaOwner
from dropline.schemas import Output


class RenditionRead(Output):
    url: str
    format: str
    width: int
    height: int


class ImageRead(Output):
    id: int
    owner_kind: MediaOwner
    owner_id: int
    position: int
    alt: str
    width: int
    height: int
    url: str  # the widest JPEG: what any reader can show
    placeholder: str
    renditions: list[RenditionRead]
