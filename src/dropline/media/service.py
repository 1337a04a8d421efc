"""Media use cases on the session: whose image it is, recording a processed image, reading
the images of many owners at once, removing one. Flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.catalog.models import Product, Variant
from dropline.clock import Clock
from dropline.drops.models import Drop
from dropline.errors import NotFound
from dropline.events.service import record_event
from dropline.media.imaging import ProcessedImage
from dropline.media.models import MediaAsset, MediaOwner
from dropline.memberships.models import MembershipTier

# Each owner's table and the column a reference other than an id names it by.
_OWNERS: dict[MediaOwner, tuple[type, str]] = {
    MediaOwner.product: (Product, "slug"),
    MediaOwner.variant: (Variant, "sku"),
    MediaOwner.drop: (Drop, "slug"),
    MediaOwner.tier: (MembershipTier, "slug"),
}


def resolve_owner(session: Session, kind: MediaOwner, ref: str | int) -> int:
    """The owner's id from its id, or its slug (a variant: its SKU); NotFound otherwise."""
    model, column = _OWNERS[kind]
    found = None
    if isinstance(ref, int) or (ref.isdigit() and len(ref) < 16):
        found = session.scalar(select(model.id).where(model.id == int(ref)))  # type: ignore[attr-defined]
    if found is None and isinstance(ref, str):
        found = session.scalar(select(model.id).where(getattr(model, column) == ref[:120]))  # type: ignore[attr-defined]
    if found is None:
        raise NotFound(f"{kind.value} {ref!r} not found")
    return int(found)


def record_image(session: Session, *, clock: Clock, owner_kind: MediaOwner, owner_id: int,
                 image: ProcessedImage, alt: str) -> MediaAsset:
    """A row for an image whose renditions are already in the store; it goes last among the
    owner's images."""
    last = session.scalar(select(func.max(MediaAsset.position)).where(
        MediaAsset.owner_kind == owner_kind, MediaAsset.owner_id == owner_id))
    asset = MediaAsset(
        owner_kind=owner_kind, owner_id=owner_id, position=0 if last is None else last + 1,
        alt=alt, digest=image.digest, width=image.width, height=image.height,
        placeholder=image.placeholder, created_at=clock.now(),
        renditions=[{"name": r.name, "format": r.format, "width": r.width,
                     "height": r.height, "bytes": len(r.data)} for r in image.renditions])
    session.add(asset)
    session.flush()
    record_event(session, clock=clock, type="media.added", subject_type=owner_kind.value,
                 subject_id=owner_id, payload={"media_id": asset.id, "digest": image.digest,
                                               "width": image.width, "height": image.height})
    return asset


def images_of(session: Session, owner_kind: MediaOwner, owner_ids: Sequence[int]
              ) -> dict[int, list[MediaAsset]]:
    """Each owner's images, main image first."""
    grouped: dict[int, list[MediaAsset]] = {i: [] for i in owner_ids}
    if owner_ids:
        for asset in session.scalars(
                select(MediaAsset).where(MediaAsset.owner_kind == owner_kind,
                                         MediaAsset.owner_id.in_(set(owner_ids)))
                .order_by(MediaAsset.owner_id, MediaAsset.position, MediaAsset.id)):
            grouped[asset.owner_id].append(asset)
    return grouped


def get_image(session: Session, media_id: int) -> MediaAsset:
    asset = session.get(MediaAsset, media_id)
    if asset is None:
        raise NotFound(f"image {media_id} not found")
    return asset


def remove_image(session: Session, *, clock: Clock, media_id: int) -> list[str]:
    """Deletes the row; returns the rendition names no other image uses (the caller removes
    them from the store once this has committed)."""
    asset = get_image(session, media_id)
    shared = session.scalar(select(func.count()).select_from(MediaAsset).where(
        MediaAsset.digest == asset.digest, MediaAsset.id != asset.id))
    names = [] if shared else [r["name"] for r in asset.renditions]
    session.delete(asset)
    session.flush()
    record_event(session, clock=clock, type="media.removed", subject_type=asset.owner_kind.value,
                 subject_id=asset.owner_id, payload={"media_id": media_id})
    return names


def move_image(session: Session, *, clock: Clock, media_id: int, steps: int) -> MediaAsset:
    """Moves an image ``steps`` places among its owner's images (negative: towards the front,
    where the first is the main image); the positions are renumbered 0..n-1."""
    asset = get_image(session, media_id)
    siblings = images_of(session, asset.owner_kind, [asset.owner_id])[asset.owner_id]
    order = [a for a in siblings if a.id != asset.id]
    at = max(0, min(len(order), siblings.index(asset) + steps))
    order.insert(at, asset)
    for position, image in enumerate(order):
        image.position = position
    session.flush()
    record_event(session, clock=clock, type="media.moved", subject_type=asset.owner_kind.value,
                 subject_id=asset.owner_id, payload={"media_id": media_id, "position": at})
    return asset
