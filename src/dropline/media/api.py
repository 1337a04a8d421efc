"""Images over HTTP: the admin upload (multipart), listing and removal under ``/api/v1``,
and ``/media/{name}``, which serves the renditions from the store with immutable caching
(their names are content-hashed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.responses import Response as PlainResponse

from dropline.errors import NotFound
from dropline.media import flows, service
from dropline.media.imaging import InvalidImage
from dropline.media.models import MediaOwner
from dropline.media.rules import Limits, content_type_of
from dropline.media.schemas import ImageRead
from dropline.media.views import image_read
from dropline.schemas import IdPath
from dropline.web.deps import Principal, ServicesDep, admin

router = APIRouter(tags=["media"])
files_router = APIRouter(include_in_schema=False)
MediaWriter = Annotated[Principal, admin("media:write")]
IMMUTABLE = "public, max-age=31536000, immutable"


def limits_of(services: ServicesDep) -> Limits:
    media = services.settings.media
    return Limits(max_bytes=media.max_bytes, max_side=media.max_side, min_side=media.min_side)


@router.post("/admin/media/{owner_kind}/{owner_ref}", response_model=ImageRead,
             status_code=status.HTTP_201_CREATED, tags=["admin"],
             summary="Upload an image of a product, variant, drop or membership tier")
def upload_image(owner_kind: MediaOwner, owner_ref: str, services: ServicesDep,
                 _: MediaWriter, file: Annotated[UploadFile, File()],
                 alt: Annotated[str, Form(max_length=300)] = "") -> ImageRead:
    """Checked by content (JPEG, PNG, WebP, AVIF or GIF; size and dimension limits), turned
    upright and stripped of metadata, then stored as AVIF/WebP/JPEG renditions at several
    widths. A refused file is a 422 and stores nothing."""
    limit = services.settings.media.max_bytes
    data = file.file.read(limit + 1)  # one byte past the limit is enough to refuse
    if len(data) > limit:
        raise InvalidImage(f"the file is larger than {limit} bytes", field="file")
    asset = flows.add_image(services.db, services.media, clock=services.clock,
                            limits=limits_of(services), owner_kind=owner_kind,
                            owner_ref=owner_ref[:120], data=data, alt=alt.strip())
    return image_read(asset, base_url=services.settings.media.public_url)


@router.get("/media/{owner_kind}/{owner_ref}", response_model=list[ImageRead],
            summary="The images of a product, variant, drop or membership tier")
def list_images(owner_kind: MediaOwner, owner_ref: str, services: ServicesDep
                ) -> list[ImageRead]:
    with services.db.transaction() as session:
        owner_id = service.resolve_owner(session, owner_kind, owner_ref[:120])
        assets = service.images_of(session, owner_kind, [owner_id])[owner_id]
    return [image_read(a, base_url=services.settings.media.public_url) for a in assets]


@router.delete("/admin/media/{media_id}", status_code=status.HTTP_204_NO_CONTENT,
               tags=["admin"], summary="Remove an image")
def delete_image(media_id: IdPath, services: ServicesDep, _: MediaWriter) -> Response:
    flows.remove_image(services.db, services.media, clock=services.clock, media_id=media_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@files_router.get("/media/{name}")
def media_file(name: str, services: ServicesDep) -> PlainResponse:
    kind = content_type_of(name)
    data = services.media.get(name) if kind else None
    if data is None or kind is None:
        raise NotFound("no such image")
    return PlainResponse(data, media_type=kind, headers={
        "Cache-Control": IMMUTABLE, "ETag": f'"{name}"',
        "Cross-Origin-Resource-Policy": "same-site"})
