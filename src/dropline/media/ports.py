"""The media store port: where renditions are kept, by name. The composition root picks the
adapter (``adapters.storage``: a local folder, or any S3-compatible bucket)."""

from __future__ import annotations

from typing import Protocol


class MediaStore(Protocol):
    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Stores ``data`` under ``name``; names are content-hashed, so a put is idempotent."""

    def get(self, name: str) -> bytes | None:
        """The bytes stored under ``name``, or None."""

    def delete(self, name: str) -> None:
        """Removes ``name``; removing a missing name is not an error."""
