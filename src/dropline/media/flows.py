"""Adding and removing an image, each owning its transaction: the upload is checked and
rendered before anything is stored (a bad file stores nothing); the renditions go to the store
before the row that names them commits, so a committed row never points at a missing file.
A row that fails to commit leaves content-hashed files nobody links (harmless; the same upload
reuses them)."""

from __future__ import annotations

from dropline.clock import Clock
from dropline.db import Database
from dropline.media import service
from dropline.media.imaging import process_image
from dropline.media.models import MediaAsset, MediaOwner
from dropline.media.ports import MediaStore
from dropline.media.rules import CONTENT_TYPES, Limits


def add_image(db: Database, store: MediaStore, *, clock: Clock, limits: Limits,
              owner_kind: MediaOwner, owner_ref: str | int, data: bytes,
              alt: str = "") -> MediaAsset:
    with db.transaction() as session:
        service.resolve_owner(session, owner_kind, owner_ref)  # a missing owner stores nothing
    image = process_image(data, limits)
    for rendition in image.renditions:
        store.put(rendition.name, rendition.data, CONTENT_TYPES[rendition.format])
    with db.transaction() as session:
        owner_id = service.resolve_owner(session, owner_kind, owner_ref)
        asset = service.record_image(session, clock=clock, owner_kind=owner_kind,
                                     owner_id=owner_id, image=image, alt=alt)
    return asset


def remove_image(db: Database, store: MediaStore, *, clock: Clock, media_id: int) -> None:
    with db.transaction() as session:
        names = service.remove_image(session, clock=clock, media_id=media_id)
    for name in names:
        store.delete(name)
