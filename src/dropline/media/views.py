"""Images as the API and the pages show them: the stored rows turned into URLs under the
media base URL (``settings.media.public_url``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from dropline.media import service
from dropline.media.models import MediaAsset, MediaOwner
from dropline.media.rules import ImageView, image_view, largest_url
from dropline.media.schemas import ImageRead, RenditionRead


def image_read(asset: MediaAsset, *, base_url: str) -> ImageRead:
    base = base_url.rstrip("/")
    return ImageRead(
        id=asset.id, owner_kind=asset.owner_kind, owner_id=asset.owner_id,
        position=asset.position, alt=asset.alt, width=asset.width, height=asset.height,
        url=largest_url(asset, base_url=base), placeholder=asset.placeholder,
        renditions=[RenditionRead(url=f"{base}/{r['name']}", format=r["format"],
                                  width=r["width"], height=r["height"])
                    for r in asset.renditions])


def image_views(session: Session, owner_kind: MediaOwner, owner_ids: Sequence[int], *,
                base_url: str) -> dict[int, list[ImageView]]:
    return {owner: [image_view(a, base_url=base_url) for a in assets]
            for owner, assets in service.images_of(session, owner_kind, owner_ids).items()}
